"""What a check of the judge is: a name, the evidence it needs, and its result at a look.

The judge is a plain list of checks (:func:`~.judge.checks_for` builds it from the
configuration); adding a check is one module with one class that has these three things.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pytest_release.canary.judge.evidence import Evidence
    from pytest_release.canary.judge.verdicts import CheckResult


class Check(Protocol):
    """One check of the canary at each look."""

    @property
    def name(self) -> str:
        """The check's stable name: the gate, plot and reports key on it."""
        ...

    @property
    def needs(self) -> tuple[str, ...]:
        """The evidence it judges: ``sampler``, ``router``, ``prometheus``, ``platform``,
        ``alertmanager``."""
        ...

    def result(self, evidence: Evidence) -> CheckResult | None:
        """The check's verdict at the look ``evidence`` describes; ``None`` when its
        evidence does not measure what it checks by design (a counted source without
        latencies), so the check does not apply."""
        ...

"""A rollout that an external controller drives (Argo Rollouts): the ``ObservingRollout``
protocol.

The controller deploys the canary, sets the weights, promotes and rolls back; the stage
only reads.  Its platform registers with ``observes=True``
(:class:`~pytest_release.canary.registry.PlatformPlugin`), so the canary gate runs
:func:`~pytest_release.canary.controller.observed_steps` instead of its own
deploy/traffic/rollback steps: ``observe`` (the controller runs this stage's step: the
canary is the release, at the stage's weight, with ready pods) and, for a judged stage,
the hold and the verdict.  The write methods of
the :class:`~pytest_release.canary.rollout.Rollout` raise
:class:`~pytest_release.errors.RolloutError`: nothing here may act beside the controller.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ObservingRollout(Protocol):
    """What a :class:`~pytest_release.canary.rollout.Rollout` that reads what a controller
    does (and writes nothing) adds to the steps."""

    @property
    def controller(self) -> str:
        """The controller in messages ("Argo Rollouts Rollout shop/shop")."""
        ...

    def observe_step(self, weight: int, release_id: str) -> list[tuple[str, str]]:
        """Wait (bounded) until the controller runs the stage's step: its canary is
        ``release_id`` with ready pods and the router sends it ``weight`` percent; the
        report properties of what was read.  :class:`RolloutError` naming what was
        expected and what the controller shows otherwise (a stage run at the wrong step)."""
        ...

    def controller_record(self) -> dict[str, Any]:
        """What the controller is doing now, for the ledger (``details.controller``)."""
        ...

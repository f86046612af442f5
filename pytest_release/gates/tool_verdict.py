"""What the gate kinds that run one external tool per gate (newman, Locust) share: the
verdict an item reports and how an item reports it (starting the tool:
:mod:`.tool_command`).

Each kind turns its tool's results into :class:`Verdict` values (its own ``verdicts.py``)
and its items report them with :meth:`ToolItem.report_verdict`; so a failing request and
a failing endpoint look the same to the user (the message masked, the properties in the
JUnit report, a passing item's message as a report section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gating.gate_node import GateItem

if TYPE_CHECKING:
    from pytest_release.stage.session import StageSession

Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Verdict:
    """What an item reports: ``passed``, ``failed`` or ``skipped``, with a message and
    the properties the JUnit report carries."""

    outcome: Outcome
    message: str = ""
    properties: tuple[tuple[str, object], ...] = ()


class ToolItem(GateItem):
    """An item of a tool-running gate kind; ``section`` names its report section."""

    section: ClassVar[str]

    def report_verdict(self, verdict: Verdict) -> None:
        redact = stage_session(self.config).redact
        for key, value in verdict.properties:
            self.user_properties.append((key, value))
        if verdict.outcome == "skipped":
            pytest.skip(redact(verdict.message))
        if verdict.outcome == "failed":
            raise GateCheckFailed(redact(verdict.message))
        if verdict.message:
            self.add_report_section("call", self.section, redact(verdict.message))


def stage_session(config: pytest.Config) -> StageSession:
    # Imported here: the stage session is the spine's controller-side object, loaded
    # only when a stage runs.
    from pytest_release.stage.session import require_stage_session

    return require_stage_session(config)

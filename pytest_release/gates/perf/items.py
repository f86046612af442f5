"""The perf gate's items: a status item for the Locust run, one item per endpoint, and
one for the endpoints whose names are only known at run time."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gates.perf.session_run import PerfRun, stage_session
from pytest_release.gates.perf.verdicts import (
    Verdict,
    endpoint_verdict,
    others_verdict,
    status_verdict,
)
from pytest_release.gating.gate_node import GateItem


class _PerfItem(GateItem):
    def __init__(self, *, runner: PerfRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    @property
    def report(self) -> str:
        return stage_session(self.config).run.relative(self.runner.html)

    def _report(self, verdict: Verdict) -> None:
        redact = stage_session(self.config).redact
        for key, value in verdict.properties:
            self.user_properties.append((key, value))
        if verdict.outcome == "skipped":
            pytest.skip(redact(verdict.message))
        if verdict.outcome == "failed":
            raise GateCheckFailed(redact(verdict.message))
        if verdict.message:
            self.add_report_section("call", "perf", redact(verdict.message))


class PerfStatusItem(_PerfItem):
    """Did Locust run the load to the end?  Fails for anything that is not an endpoint's
    own result: Locust missing, locustfile missing or broken, target refused, crash."""

    def runtest(self) -> None:
        self._report(status_verdict(self.runner.outcome(self.config), self.report))


class PerfEndpointItem(_PerfItem):
    """One endpoint (``"<METHOD> <Locust name>"``) against its limits."""

    def __init__(self, *, endpoint: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint

    def runtest(self) -> None:
        outcome = self.runner.outcome(self.config)
        limits = self.runner.gate.limits(self.endpoint)
        self._report(endpoint_verdict(outcome, self.endpoint, limits, self.report))


class PerfOthersItem(_PerfItem):
    """Endpoints Locust measured that have no item (names built at run time)."""

    def __init__(self, *, known: frozenset[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.known = known

    def runtest(self) -> None:
        outcome = self.runner.outcome(self.config)
        self._report(others_verdict(outcome, set(self.known), self.runner.gate))

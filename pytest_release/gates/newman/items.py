"""The newman gate's items: one per request of a collection, plus a status item per
collection run and problem items for what could not be collected."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gates.newman.collection_run import CollectionRun, stage_session
from pytest_release.gates.newman.verdicts import Verdict, request_verdict, status_verdict
from pytest_release.gating.gate_node import GateItem


# -- items ----------------------------------------------------------------------------------
class _NewmanItem(GateItem):
    def _report(self, verdict: Verdict) -> None:
        redact = stage_session(self.config).redact
        for key, value in verdict.properties:
            self.user_properties.append((key, value))
        if verdict.outcome == "skipped":
            pytest.skip(redact(verdict.message))
        if verdict.outcome == "failed":
            raise GateCheckFailed(redact(verdict.message))
        if verdict.message:
            self.add_report_section("call", "newman", redact(verdict.message))


class NewmanProblemItem(_NewmanItem):
    """A collection that cannot be used (missing, malformed): always fails with why."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        self._report(Verdict("failed", self.message))


class NewmanStatusItem(_NewmanItem):
    """Did newman run the collection to the end?  Fails for anything that is not a
    request's own result: newman missing, bad input files, timeout, run errors."""

    def __init__(self, *, runner: CollectionRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    def runtest(self) -> None:
        outcome = self.runner.outcome(self.config)
        self._report(
            status_verdict(
                outcome,
                expected_iterations=self.runner.iterations,
                expected=self.runner.expected_names,
            )
        )


class NewmanRequestItem(_NewmanItem):
    """One request of a collection in one iteration: its ``pm.test`` assertions."""

    def __init__(
        self,
        *,
        runner: CollectionRun,
        position: int,
        request_name: str,
        iteration: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.runner = runner
        self.position = position
        self.request_name = request_name
        self.iteration = iteration

    def runtest(self) -> None:
        outcome = self.runner.outcome(self.config)
        if outcome.problem is not None:
            # Reported once, by the status item, with the number of requests not run.
            self._report(
                Verdict(
                    "skipped",
                    f"not run: newman did not run {self.runner.collection.path.name} "
                    f"(why is reported once, by {self.runner.status_name})",
                )
            )
            return
        self._report(
            request_verdict(outcome, self.position, self.iteration, expected_name=self.request_name)
        )

"""Gate outcomes and closure: a failed gate closes every gate that depends on it.

The tracker lives on the process that sees every report: the only process without
xdist, the controller with it.  Workers learn which gates are closed from
:class:`ClosedGatesFile`, written by the controller before it releases those items.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_release.config.plan import StagePlan
from pytest_release.ledger.stage_run import GateResult, GateStatus
from pytest_release.report.gate_properties import closed_reason, report_gate, was_closed
from pytest_release.system.atomic import write_json_atomic

# Seconds a gate spent outside its items' own time (the lint tools run once at collection):
# counted in the gate's duration, once per item that carries it.
GATE_WORK_PROPERTY = "gate_work_seconds"


def work_seconds(report: pytest.TestReport) -> float:
    """The :data:`GATE_WORK_PROPERTY` of a report's item (0 without one)."""
    for name, value in report.user_properties:
        if name == GATE_WORK_PROPERTY:
            try:
                return max(0.0, float(str(value)))
            except (TypeError, ValueError):
                return 0.0
    return 0.0


@dataclass(slots=True)
class _GateTally:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    closed: int = 0
    xfailed: int = 0
    first_start: float | None = None
    last_stop: float | None = None
    work_seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)


class GateTracker:
    """Per-gate counts and the set of failed gates, fed with every test report."""

    def __init__(self, plan: StagePlan) -> None:
        self.plan = plan
        self.members: dict[str, str] = {}
        self.failed_gates: set[str] = set()
        self._tally = {gate: _GateTally() for gate in plan.order}
        self._item_state: dict[str, str] = {}  # items still running
        # Selected items (after -k, -m, --deselect, --lf) that have not finished: it
        # shrinks as the tests run, so a finished test leaves nothing behind here.
        self._pending: dict[str, str] | None = None  # nodeid -> gate
        self.selected_count = 0
        self._deselected = 0

    def set_members(self, members: Mapping[str, str]) -> None:
        # In place: the JUnit recorder shares this mapping.
        self.members.clear()
        self.members.update(members)

    def set_selected(self, nodeids: Iterable[str]) -> None:
        """The items that run (after ``-k``, ``-m``, ``--deselect``, ``--lf``)."""
        members = self.members
        self._pending = {n: members[n] for n in nodeids if n in members}
        self.selected_count = len(self._pending)
        self._deselected = len(members) - len(self._pending)

    def deselected(self) -> int:
        """Stage items collected but deselected."""
        return self._deselected

    def not_run(self, gate: str | None = None) -> list[str]:
        """Selected items (of ``gate``) that never reported a final outcome."""
        if self._pending is None:
            return []
        return sorted(n for n, g in self._pending.items() if gate is None or g == gate)

    def closed_by(self, gate: str) -> str | None:
        """The reason ``gate`` is closed (an upstream gate failed), or None."""
        if not self.failed_gates:  # the common case, asked before every test
            return None
        for upstream in self.plan.upstream(gate):
            if upstream in self.failed_gates:
                return closed_reason(upstream)
        return None

    def record(self, report: pytest.TestReport) -> str | None:
        """Account one report; returns its gate (None for items outside the stage).

        Called for every phase of every test: a report without user properties (most)
        is neither closed nor carries gate work, and a passed setup or call changes no
        state, so those cost a lookup and the time span only."""
        nodeid = report.nodeid
        if report.user_properties:
            gate = report_gate(report, self.members)
            closed = was_closed(report)  # every phase: teardown reports pass
        else:
            gate = self.members.get(nodeid)
            closed = False
        if gate is None:
            return None
        tally = self._tally.get(gate)
        if tally is None:
            return None
        if not closed:  # a closed gate never ran: it has no duration
            start = getattr(report, "start", None)
            stop = getattr(report, "stop", None)
            first, last = tally.first_start, tally.last_stop
            if isinstance(start, float) and (first is None or start < first):
                tally.first_start = start
            if isinstance(stop, float) and (last is None or stop > last):
                tally.last_stop = stop
        when = report.when
        finished = when != "setup" and when != "call"  # teardown (or any later phase)
        if report.failed:
            self._item_state[nodeid] = "failed"
            self.failed_gates.add(gate)
        elif report.skipped and self._item_state.get(nodeid, "passed") == "passed":
            state = "closed" if closed else "skipped"
            if hasattr(report, "wasxfail"):
                state = "xfailed"
            self._item_state[nodeid] = state
        # A passed phase leaves the item's state as it was ("passed" when none is kept).
        if finished:
            if not closed and report.user_properties:
                tally.work_seconds += work_seconds(report)
            self._finish_item(gate, nodeid)
        return gate

    def _finish_item(self, gate: str, nodeid: str) -> None:
        if self._pending is not None:
            self._pending.pop(nodeid, None)
        state = self._item_state.pop(nodeid, "passed")
        tally = self._tally[gate]
        setattr(tally, state, getattr(tally, state) + 1)

    def results(self) -> tuple[GateResult, ...]:
        results = []
        for gate in self.plan.order:
            tally = self._tally[gate]
            status: GateStatus
            reason = ""
            not_run = len(self.not_run(gate))
            if tally.failed:
                status = "failed"
            elif not_run:
                status = "interrupted"
                reason = f"{not_run} item(s) never ran"
            elif tally.closed or (
                not (tally.passed or tally.skipped or tally.xfailed)
                and self.closed_by(gate) is not None
            ):
                status = "closed"
                reason = self.closed_by(gate) or ""
            elif tally.passed:
                status = "passed"
            elif tally.skipped or tally.xfailed:
                status = "skipped"
            else:
                status = "empty"
            duration = 0.0
            if tally.first_start is not None and tally.last_stop is not None:
                duration = max(0.0, tally.last_stop - tally.first_start)
            duration += tally.work_seconds
            results.append(
                GateResult(
                    gate,
                    status,
                    tally.passed,
                    tally.failed,
                    tally.skipped,
                    tally.closed,
                    duration,
                    reason,
                    not_run=not_run,
                    xfailed=tally.xfailed,
                )
            )
        return tuple(results)


class ClosedGatesFile:
    """The controller's decisions about closed gates, read by xdist workers.

    Written atomically (write + rename) by the controller before it sends a worker the
    item that lets a closed gate's item start, so a worker always reads a decision that
    is final for the items it is about to run.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[tuple[int, int], dict[str, str]] | None = None

    def write(self, closed: Mapping[str, str]) -> None:
        write_json_atomic(self.path, dict(closed))

    def read(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        # os.replace gives every version a new inode, so (inode, mtime) identifies it.
        version = (stat.st_ino, stat.st_mtime_ns)
        if self._cache is None or self._cache[0] != version:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._cache = (version, {str(k): str(v) for k, v in data.items()})
        return dict(self._cache[1])

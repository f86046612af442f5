"""GateScheduling driven through xdist's Scheduling protocol, call by call.

The pytester tests in test_gates.py run real xdist workers and check outcomes; this one
checks what the scheduler *sends*, which real runs do not expose: gate barriers, batches
of items per message, and that a finished test costs no message until its worker's queue
runs low.  ``RecordingNode`` is a stand-in for xdist's ``WorkerController`` (named so): it
records ``send_runtest_some`` / ``shutdown`` instead of talking to a process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_release.config.plan import StagePlan
from pytest_release.gating.closing import ClosedGatesFile, GateTracker
from pytest_release.gating.xdist_scheduler import GateScheduling
from pytest_release.stage.run_dir import membership_file

pytest.importorskip("xdist")


@dataclass(frozen=True)
class _Gateway:
    id: str


@dataclass(eq=False)
class RecordingNode:
    """Stand-in for xdist's WorkerController: records what the scheduler sends."""

    gateway: _Gateway
    sent: list[list[int]] = field(default_factory=list)
    shutting_down: bool = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append(list(indices))

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduler(
    pytester: pytest.Pytester, members: dict[str, str], plan: StagePlan
) -> tuple[GateScheduling, list[RecordingNode], GateTracker]:
    config = pytester.parseconfig("--tx", "2*popen")
    run_dir = pytester.path / "run"
    run_dir.mkdir()
    tracker = GateTracker(plan)
    sched = GateScheduling(config, print, tracker, run_dir, ClosedGatesFile(run_dir / "c.json"))
    nodes = [RecordingNode(_Gateway(f"gw{i}")) for i in range(2)]
    collection = list(members)
    for node in nodes:
        membership_file(run_dir, node.gateway.id).write_text(
            json.dumps({"members": members, "finalizers": []}), encoding="utf-8"
        )
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    return sched, nodes, tracker


def _pending(sched: GateScheduling, node: RecordingNode) -> list[int]:
    return sched.node2pending[node]


def _run_all(sched: GateScheduling, nodes: list[RecordingNode]) -> list[int]:
    """Finish queued items (each worker runs its head once it holds a successor, or is
    shutting down) until no worker can run anything; returns the completion order."""
    done: list[int] = []
    progress = True
    while progress:
        progress = False
        for node in nodes:
            queue = _pending(sched, node)
            if len(queue) >= 2 or (queue and node.shutting_down):
                index = queue[0]
                sched.mark_test_complete(node, index)
                done.append(index)
                progress = True
    return done


def test_items_go_out_in_batches_not_one_message_per_test(pytester: pytest.Pytester) -> None:
    members = {f"t.py::test_{i}": "unit" for i in range(400)}
    plan = StagePlan("s", ("unit",), {"unit": ()})
    sched, nodes, _ = _scheduler(pytester, members, plan)
    done = _run_all(sched, nodes)
    assert sorted(done) == list(range(400))
    assert sched.tests_finished
    messages = sum(len(node.sent) for node in nodes)
    # One message per test would be 400; batching refills at half a queue of up to 16.
    assert messages < 400 // 4, messages
    assert all(node.shutting_down for node in nodes)


def test_a_finished_test_sends_nothing_while_the_queue_is_above_the_refill_mark(
    pytester: pytest.Pytester,
) -> None:
    members = {f"t.py::test_{i}": "unit" for i in range(400)}
    plan = StagePlan("s", ("unit",), {"unit": ()})
    sched, nodes, _ = _scheduler(pytester, members, plan)
    node = nodes[0]
    queue = _pending(sched, node)
    assert len(queue) > 4, queue  # the first fill is a batch
    before = len(node.sent)
    sched.mark_test_complete(node, queue[0])
    assert len(node.sent) == before
    # Run it down: a refill comes once the queue is below half the target, not later.
    while len(node.sent) == before:
        assert len(queue) >= 3, "the worker's queue ran down to 2 without a refill"
        sched.mark_test_complete(node, queue[0])


def test_a_gate_starts_only_after_the_gate_it_depends_on_and_is_closed_by_its_failure(
    pytester: pytest.Pytester,
) -> None:
    members = {f"t.py::test_u{i}": "unit" for i in range(40)}
    members |= {f"t.py::test_i{i}": "integration" for i in range(40)}
    plan = StagePlan("s", ("unit", "integration"), {"unit": (), "integration": ("unit",)})
    sched, nodes, tracker = _scheduler(pytester, members, plan)
    unit = set(range(40))
    started: list[int] = []
    for node in nodes:
        queue = _pending(sched, node)
        # At most the tail of a queue may belong to the gate not released yet.
        assert all(index in unit for index in queue[:-1])
    tracker.failed_gates.add("unit")  # a unit test failed (the tracker saw its report)
    started = _run_all(sched, nodes)
    first_integration = next(i for i, index in enumerate(started) if index not in unit)
    assert set(started[:first_integration]) == unit
    assert sched.closed == {"integration": "gate 'unit' failed"}
    assert json.loads(Path(sched.closed_file.path).read_text()) == sched.closed

"""Gate-aware scheduling for pytest-xdist (controller only).

xdist workers run an item only once they hold the next one (they need ``nextitem`` for
teardown) or are told to shut down.  So the scheduler keeps one rule: the last item
queued on a worker may belong to a gate that is not released yet, but nothing is queued
behind it until its gate is released.  A gate is released when every gate it depends on
has completed; at that moment the controller knows whether any of them failed, writes
the closed gates to :class:`~pytest_release.gating.closing.ClosedGatesFile` and only then
lets the gate's items start, so a worker skips an item of a closed gate without running
it.  Gates that do not depend on each other are released together and run in parallel.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from xdist.report import report_collection_diff
from xdist.workermanage import parse_tx_spec_config

from pytest_release.gating.closing import ClosedGatesFile, GateTracker
from pytest_release.stage.run_dir import membership_file

if TYPE_CHECKING:
    from xdist.workermanage import WorkerController

UNGATED = ""
FINAL = "#final"  # a gate's finalizer items form a barrier of their own: "<gate>#final"


def real_gate(key: str) -> str:
    return key.removesuffix(FINAL)


class GateScheduling:
    """Implements xdist's ``Scheduling`` protocol with gate dependencies as barriers."""

    def __init__(
        self,
        config: pytest.Config,
        log: Any,
        tracker: GateTracker,
        run_dir: Path,
        closed_file: ClosedGatesFile,
    ) -> None:
        self.numnodes = len(parse_tx_spec_config(config))
        self.config = config
        self.log = log
        self.tracker = tracker
        self.plan = tracker.plan
        self.run_dir = run_dir
        self.closed_file = closed_file
        self.node2collection: dict[WorkerController, list[str]] = {}
        self.node2pending: dict[WorkerController, list[int]] = {}
        self.collection: list[str] | None = None
        self.gate_of_index: list[str] = []
        self.undispatched: dict[str, deque[int]] = {}
        self.remaining: dict[str, int] = {}
        self.released: set[str] = set()
        self.closed: dict[str, str] = {}
        # Serial gates run all their items, in order, on the first worker given one.
        self.serial_owner: dict[str, WorkerController] = {}
        # A worker whose queue is shorter than this is refilled (set by each _advance).
        self._refill_mark = 3

    # -- the Scheduling protocol ------------------------------------------------------
    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.collection is None:
            return False
        if any(self.undispatched.values()):
            return False
        for queue in self.node2pending.values():
            if len(queue) >= 2:
                return False
            if queue and not self._is_released(queue[-1]):
                return False
        return True

    @property
    def has_pending(self) -> bool:
        return any(self.undispatched.values()) or any(self.node2pending.values())

    def add_node(self, node: WorkerController) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        if (
            self.collection_is_completed
            and self.collection is not None
            and list(collection) != self.collection
        ):
            other = next(iter(self.node2collection))
            self.log(
                report_collection_diff(
                    self.collection, collection, other.gateway.id, node.gateway.id
                )
            )
            return
        self.node2collection[node] = list(collection)

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        queue = self.node2pending[node]
        queue.remove(item_index)
        key = self.gate_of_index[item_index]
        self.remaining[key] -= 1
        # Only two things can change what to send: a barrier completing (gates to release,
        # closed gates to decide) or this worker's queue running below the refill mark.
        # Otherwise a completion costs no pass over the gates (one per finished test).
        if self.remaining[key] == 0 or len(queue) < self._refill_mark:
            self._advance()

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        index = self.collection.index(item)
        self.undispatched[self.gate_of_index[index]].appendleft(index)
        self._advance()

    def remove_pending_tests_from_node(
        self, node: WorkerController, indices: Sequence[int]
    ) -> None:
        raise NotImplementedError("work stealing is not used with gate scheduling")

    def remove_node(self, node: WorkerController) -> str | None:
        queue = self.node2pending.pop(node)
        if not queue:
            return None
        assert self.collection is not None
        crashed = queue.pop(0)
        key = self.gate_of_index[crashed]
        # xdist reports the crash as a failure after this returns; count it now so that
        # gates depending on this one are closed, not released.
        self.remaining[key] -= 1
        if key != UNGATED:
            self.tracker.failed_gates.add(real_gate(key))
        for index in reversed(queue):
            self.undispatched[self.gate_of_index[index]].appendleft(index)
        self._advance()
        return self.collection[crashed]

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            self._advance()
            return
        if not self._same_collections():
            self.log("**Different tests collected, aborting run**")
            return
        first = next(iter(self.node2collection))
        self.collection = self.node2collection[first]
        members, finalizers = self._read_members(first)
        self.tracker.set_members(members)
        self.tracker.set_selected(self.collection)
        self.undispatched = {key: deque() for key in self._keys()}
        self.remaining = dict.fromkeys(self.undispatched, 0)
        for index, nodeid in enumerate(self.collection):
            gate = members.get(nodeid, UNGATED)
            key = gate + FINAL if nodeid in finalizers and gate != UNGATED else gate
            if key not in self.undispatched:
                key = UNGATED
            self.gate_of_index.append(key)
            self.undispatched[key].append(index)
            self.remaining[key] += 1
        self.released.add(UNGATED)
        self._advance()

    # -- gate barriers ------------------------------------------------------------------
    def _is_released(self, index: int) -> bool:
        return self.gate_of_index[index] in self.released

    def _keys(self) -> list[str]:
        """Barrier keys in run order: each gate, then its finalizers."""
        return [UNGATED, *(key for gate in self.plan.order for key in (gate, gate + FINAL))]

    def _complete(self, key: str) -> bool:
        return key in self.released and self.remaining[key] == 0

    def _done(self, gate: str) -> bool:
        """The gate and its finalizers have run."""
        return self._complete(gate) and self._complete(gate + FINAL)

    def _release_ready_gates(self) -> None:
        changed = False
        for gate in self.plan.order:
            if gate not in self.released and all(
                self._done(dep) for dep in self.plan.depends_on[gate]
            ):
                reason = self.tracker.closed_by(gate)
                if reason is not None:
                    self.closed[gate] = reason
                    changed = True
                self.released.add(gate)
            # Finalizers start once every other item of their gate has finished.
            if self._complete(gate):
                self.released.add(gate + FINAL)
        if changed:
            self.closed_file.write(self.closed)

    def _advance(self) -> None:
        if self.collection is None:
            return
        self._release_ready_gates()
        target = self._target()
        # Refill a worker only once its queue has run down to half the target, then up to
        # the target: one message per several items (as xdist's load scheduling does),
        # not one per finished test.  A queue of 2 or less is always refilled, so a worker
        # never waits for its next item while it still could run one.
        low = self._refill_mark = max(3, target // 2)
        outgoing: dict[WorkerController, list[int]] = {
            node: [] for node in self.nodes if len(self.node2pending[node]) < low
        }
        # Round-robin, one item per node per round, so released gates spread over workers.
        progress = True
        while progress:
            progress = False
            for node in outgoing:
                if self._take_one(node, target, outgoing[node]):
                    progress = True
        for node, indices in outgoing.items():
            if indices:
                node.send_runtest_some(indices)
        if not any(self.undispatched.values()):
            for node in self.nodes:
                queue = self.node2pending[node]
                # Nothing is left to queue behind this tail: shutting down lets it run.
                if queue and self._is_released(queue[-1]) and not node.shutting_down:
                    node.shutdown()

    def _take_one(self, node: WorkerController, target: int, outgoing: list[int]) -> bool:
        if node.shutting_down:
            return False
        queue = self.node2pending[node]
        if queue and not self._is_released(queue[-1]):
            return False  # the tail waits for its gate; queuing behind it would start it
        if len(queue) >= target:
            return False
        index = self._next_index(node, released=True)
        if index is None and queue:
            # Only a successor lets the worker run its tail: queue one item of a gate
            # that is not released yet (it will not start before its gate is).
            index = self._next_index(node, released=False)
        if index is None:
            return False
        queue.append(index)
        outgoing.append(index)
        return True

    def _next_index(self, node: WorkerController, *, released: bool) -> int | None:
        for key in self._keys():
            if (key in self.released) != released or not self.undispatched[key]:
                continue
            gate = real_gate(key)
            if gate in self.plan.serial:
                owner = self.serial_owner.setdefault(gate, node)
                if owner is not node and owner in self.node2pending:
                    continue
                self.serial_owner[gate] = node
            return self.undispatched[key].popleft()
        return None

    def _target(self) -> int:
        ready = sum(len(q) for g, q in self.undispatched.items() if g in self.released)
        return max(2, min(16, ready // max(1, 2 * len(self.node2pending))))

    def _same_collections(self) -> bool:
        (first_node, first), *others = list(self.node2collection.items())
        same = True
        for node, collection in others:
            diff = report_collection_diff(first, collection, first_node.gateway.id, node.gateway.id)
            if diff:
                same = False
                self.log(diff)
                report = pytest.CollectReport(node.gateway.id, "failed", longrepr=diff, result=[])
                self.config.hook.pytest_collectreport(report=report)
        return same

    def _read_members(self, node: WorkerController) -> tuple[dict[str, str], set[str]]:
        """nodeid -> gate, and the node ids of gate finalizers (written by the worker)."""
        path = membership_file(self.run_dir, node.gateway.id)
        data = json.loads(path.read_text(encoding="utf-8"))
        raw: dict[str, str] = data["members"]
        # Kept for the whole session: the node ids the controller already holds (xdist's
        # collection, in the same order when every item is in a gate) and one string
        # per gate, not a parsed copy of each per test.
        names = list(raw)
        keys = self.collection if self.collection == names else names
        gates = {gate: gate for gate in self.plan.order}
        members = {k: gates.get(v, v) for k, v in zip(keys, raw.values(), strict=True)}
        return members, {str(n) for n in data["finalizers"]}

"""Put collected items into the stage's gates, add generated items, order by gate."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_release.gating.gate_node import GateNode
from pytest_release.ledger.stage_run import StageRun
from pytest_release.workflow.sharding import keep_shard


def matches_paths(relpath: str, patterns: Iterable[str]) -> bool:
    """Whether a gate's ``paths`` globs name ``relpath`` (repo-relative)."""
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(relpath, pattern):
            return True
        # A plain directory name selects everything below it.
        if not any(ch in pattern for ch in "*?[") and relpath.startswith(pattern + "/"):
            return True
    return False


def closest_marker(
    item: pytest.Item,
    name: str,
    inherited: dict[tuple[pytest.Collector, str], pytest.Mark | None] | None = None,
) -> pytest.Mark | None:
    """``item.get_closest_marker(name)``; with ``inherited``, the markers of the item's
    parents (module, class) are looked up once per parent, not once per item."""
    if inherited is None:
        return item.get_closest_marker(name)
    for mark in item.own_markers:
        if getattr(mark, "name", None) == name:
            return mark
    parent = item.parent
    if not isinstance(parent, pytest.Collector):  # not pytest's tree: ask the item
        return item.get_closest_marker(name)
    key = (parent, name)
    if key not in inherited:
        inherited[key] = parent.get_closest_marker(name)
    return inherited[key]


def gate_of(
    item: pytest.Item,
    run: StageRun,
    relpaths: dict[Path, str] | None = None,
    inherited: dict[tuple[pytest.Collector, str], pytest.Mark | None] | None = None,
) -> str | None:
    """The gate ``item`` belongs to in this stage, None when it is in none of them.

    An explicit ``@pytest.mark.gate(name)`` wins; then the gates' ``markers``; then
    their ``paths`` globs, in the stage's gate order.  ``relpaths`` and ``inherited``
    keep what items of one file or class share (:func:`assign_items`).
    """
    marker = closest_marker(item, "gate", inherited)
    if marker is not None:
        name = marker.args[0] if marker.args else marker.kwargs.get("name")
        if not isinstance(name, str) or name not in run.config.gates:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.gate({name!r}) names no configured gate; "
                f"gates in {run.config.source}: {', '.join(run.config.gates)}"
            )
        return name if name in run.plan.order else None
    # The plan's markers and paths, not the gates' tables: a worker reads no table here.
    plan = run.plan
    for name in plan.order:
        markers = plan.markers.get(name, ())
        if markers and any(closest_marker(item, m, inherited) for m in markers):
            return name
    if relpaths is None:
        relpath = run.relative(item.path)
    else:  # one per file, not per test
        relpath = relpaths.get(item.path) or relpaths.setdefault(item.path, run.relative(item.path))
    for name in plan.order:
        paths = plan.paths.get(name, ())
        if paths and matches_paths(relpath, paths):
            return name
    return None


def assign_items(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item], run: StageRun
) -> dict[str, str]:
    """Filter and order ``items`` in place for the stage; returns nodeid -> gate."""
    by_gate: dict[str, list[pytest.Item]] = {gate: [] for gate in run.plan.order}
    deselected: list[pytest.Item] = []
    relpaths: dict[Path, str] = {}
    inherited: dict[tuple[pytest.Collector, str], pytest.Mark | None] = {}
    for item in items:
        gate = gate_of(item, run, relpaths, inherited)
        if gate is None:
            deselected.append(item)
        else:
            by_gate[gate].append(item)

    for gate_name in run.plan.order:
        node = GateNode.for_gate(session, gate_name, run)
        report = node.ihook.pytest_make_collect_report(collector=node)
        node.ihook.pytest_collectreport(report=report)
        generated = [r for r in report.result if isinstance(r, pytest.Item)]
        finalizers = [i for i in generated if is_finalizer(i)]
        others = [i for i in generated if not is_finalizer(i)]
        by_gate[gate_name] = [*others, *by_gate[gate_name], *finalizers]
    deselected += keep_shard(config, by_gate, is_finalizer)  # --release-shard (sharding.py)

    members: dict[str, str] = {}
    ordered: list[pytest.Item] = []
    for gate_name in run.plan.order:
        for item in by_gate[gate_name]:
            members[item.nodeid] = gate_name
            ordered.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = ordered
    return members


def is_finalizer(item: pytest.Item) -> bool:
    """Runs after every other item of its gate (see :class:`GateItem`)."""
    return bool(getattr(item, "gate_finalizer", False))

"""Checks across the stages of a release configuration, run at load time (before
anything is built from it): ``requires`` cycles, and the canary steps' weights and
number of judged intervals.  Each problem is one line naming the key and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_release.config.plain_tables import StageConfig

# Judged intervals of one canary hold at most: each is a test item (and a window of
# samples kept in memory); millions of them exhausted memory before anything ran.
MAX_INTERVALS = 10_000


def stage_problems(stages: Mapping[str, StageConfig]) -> list[str]:
    """Problems between stages: ``requires`` cycles, and the canary steps' weights and
    judged intervals (checked at load time, before anything is built from them)."""
    return [*_requires_problems(stages), *_rollout_problems(stages)]


def _requires_problems(stages: Mapping[str, StageConfig]) -> list[str]:
    problems: list[str] = []
    for name, stage in stages.items():
        if name in stage.requires:
            problems.append(
                f"  stages.{name}.requires: stage {name!r} requires itself; remove {name!r} "
                "from its requires"
            )
    reported: set[frozenset[str]] = set()
    for cycle in _requires_cycles(stages):
        members = frozenset(cycle)
        if members in reported:
            continue
        reported.add(members)
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(
            f"  stages.{cycle[0]}.requires: the stages {', '.join(sorted(members))} require "
            f"each other in a cycle ({path}); none of them could ever run: remove one of these "
            "requires"
        )
    return problems


def _requires_cycles(stages: Mapping[str, StageConfig]) -> list[list[str]]:
    """Cycles of two or more stages along ``requires`` (self-requires are reported apart)."""
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for required in stages[name].requires:
            if required == name or required not in stages or required in done:
                continue
            if required in path:
                cycles.append(path[path.index(required) :])
                continue
            visit(required, [*path, required])
        done.add(name)

    for name in stages:
        if name not in done:
            visit(name, [name])
    return cycles


def _rollout_problems(stages: Mapping[str, StageConfig]) -> list[str]:
    problems: list[str] = []
    for name, stage in stages.items():
        rollout = stage.rollout
        if rollout is None or rollout.action not in ("canary", "bluegreen-deploy"):
            continue
        key = f"stages.{name}.rollout"
        if rollout.action == "canary" and not 0 < rollout.weight < 100:
            problems.append(
                f"  {key}.weight = {rollout.weight}: a canary step sends between 1 and 99 "
                "percent of the traffic to the canary (0 judges nothing, 100 leaves stable no "
                "traffic to compare with); use action = 'promote' for 100"
            )
        if rollout.hold > 0 and rollout.interval <= 0:
            problems.append(f"  {key}.interval = {rollout.interval:g}: must be more than 0 seconds")
        elif rollout.hold > 0:
            count = math.ceil(rollout.hold / rollout.interval - 1e-9)
            if count > MAX_INTERVALS:
                problems.append(
                    f"  {key}: hold = {rollout.hold:g}s with interval = {rollout.interval:g}s "
                    f"gives {count} judged intervals; at most {MAX_INTERVALS} are allowed "
                    f"(each is a test item): raise interval or shorten hold"
                )
        if rollout.action != "canary":
            continue  # blue/green: the weights are 0 (idle) and 100 (switched)
        for before in _previous_canary_stages(stages, name):
            previous = stages[before].rollout
            assert previous is not None
            if rollout.weight <= previous.weight:
                problems.append(
                    f"  {key}.weight = {rollout.weight}: must be above {previous.weight}, the "
                    f"weight of canary stage {before!r} before it (requires); the canary's "
                    "share of the traffic grows from one canary stage to the next"
                )
    return problems


def _previous_canary_stages(stages: Mapping[str, StageConfig], name: str) -> list[str]:
    """The nearest canary stages ``name`` requires, directly or through stages without a
    rollout (a promote or rollback ends a rollout: the weights start again after it)."""
    found: list[str] = []
    seen = {name}
    stack = list(stages[name].requires)
    while stack:
        required = stack.pop()
        if required in seen or required not in stages:
            continue
        seen.add(required)
        rollout = stages[required].rollout
        if rollout is None:
            stack.extend(stages[required].requires)
        elif rollout.action == "canary":
            found.append(required)
    return sorted(found)

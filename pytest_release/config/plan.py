"""A stage's gate graph: which gates run, in which order, and what each one waits for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config.release_config import ReleaseConfig


@dataclass(frozen=True)
class StagePlan:
    """Gates of one stage in a valid run order, each with the gates it depends on.

    A gate whose ``after`` is unset depends on the gate listed before it in the stage
    (a sequence); ``after = [...]`` names its dependencies explicitly (a DAG);
    dependencies on gates outside the stage are ignored.
    """

    stage: str
    order: tuple[str, ...]
    depends_on: Mapping[str, tuple[str, ...]]
    serial: frozenset[str] = frozenset()  # gates whose items run in order in one process
    # Which tests join each gate (its ``markers`` and ``paths``): what collection reads of
    # the gates' tables, here so that an xdist worker reads no table to collect.
    markers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def index(self, gate: str) -> int:
        return self.order.index(gate)

    def upstream(self, gate: str) -> tuple[str, ...]:
        """Every gate ``gate`` transitively depends on, in run order."""
        seen: set[str] = set()
        stack = list(self.depends_on[gate])
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(self.depends_on[dep])
        return tuple(g for g in self.order if g in seen)


def build_plan(
    config: ReleaseConfig, stage_name: str, only: tuple[str, ...] | None = None
) -> StagePlan:
    """The stage's plan; ``only`` keeps just those gates (``--gate``), dropping
    dependencies on the others."""
    stage = config.stage(stage_name)
    listed = list(dict.fromkeys(stage.gates))
    if only is not None:
        unknown = [g for g in only if g not in listed]
        if unknown:
            raise ReleaseConfigError(
                f"--gate {', '.join(unknown)}: not a gate of stage {stage_name!r}; "
                f"its gates: {', '.join(listed)}"
            )
        listed = [g for g in listed if g in only]
    depends_on: dict[str, tuple[str, ...]] = {}
    for position, gate_name in enumerate(listed):
        after = config.common[gate_name].after
        if after is None:
            depends_on[gate_name] = (listed[position - 1],) if position else ()
        else:
            depends_on[gate_name] = tuple(dep for dep in after if dep in listed)
    order = _topological(listed, depends_on, stage_name, config.source)
    serial = frozenset(g for g in listed if config.common[g].serial)
    return StagePlan(
        stage=stage_name,
        order=order,
        depends_on=depends_on,
        serial=serial,
        markers={g: config.common[g].markers for g in order},
        paths={g: config.common[g].paths for g in order},
    )


def _topological(
    listed: list[str], depends_on: Mapping[str, tuple[str, ...]], stage: str, source: str
) -> tuple[str, ...]:
    # Kahn's algorithm, stable: among ready gates the one listed first goes first.
    remaining = {gate: set(deps) for gate, deps in depends_on.items()}
    order: list[str] = []
    while remaining:
        ready = [gate for gate in listed if gate in remaining and not remaining[gate]]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise ReleaseConfigError(
                f"invalid release configuration in {source}:\n  stages.{stage}.gates: "
                f"the 'after' dependencies of gates {cycle} form a cycle; remove one of them"
            )
        gate = ready[0]
        order.append(gate)
        del remaining[gate]
        for deps in remaining.values():
            deps.discard(gate)
    return tuple(order)

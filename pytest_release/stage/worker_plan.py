"""What an xdist worker needs of its stage, handed over by the controller.

The controller validates the configuration once (:mod:`.resolve`) and gives each worker,
through ``workerinput`` (xdist's ``pytest_configure_node``), the resolved run: the
stage's plan (gate order, dependencies, which tests join which gate), the settings the
run resolved (release id, image, paths) and the validated tables pickled, one blob per
table.  A worker builds its :class:`StageRun` from that without reading the TOML,
without resolving the release id again, without importing pydantic: a table is
unpickled (importing its model) only when a gate kind the worker runs reads it.

When a table cannot be pickled (a gate kind's model defined where pickle cannot find
it), no plan is sent and every worker loads and validates the configuration itself,
as before: slower, never different.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.config.common_gate import CommonGateSettings, common_settings
from pytest_release.config.lazy import BuiltOnRead, Lazy, PickledTables
from pytest_release.config.plan import StagePlan
from pytest_release.config.release_config import ReleaseConfig
from pytest_release.ledger.stage_run import StageRun

if TYPE_CHECKING:
    from pytest_release.config.tables import GateConfig

PLAN_KEY = "pytest_release_plan"
# Bumped when the plan's shape changes (a worker of another version refuses it).
PLAN_VERSION = 2


def _pickled(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _sent_gates(run: StageRun) -> list[str]:
    """The stage's gates and the gates they take settings from (``settings_from``)."""
    sent = list(run.plan.order)
    for name in run.plan.order:
        other = run.config.common[name].settings_from
        if other is not None and other in run.config.gates and other not in sent:
            sent.append(other)
    return sent


def _tables_sent(run: StageRun, gates: list[str]) -> list[str]:
    """The gates whose tables the workers get: those of a gate kind (its plugin reads
    them).  A ``tests`` gate's table is read by no built-in code: it is sent only when
    this process has it already, never validated for the workers' sake."""
    tables = run.config.gates
    have = set(tables.built()) if isinstance(tables, BuiltOnRead) else set(gates)
    return [g for g in gates if run.config.common[g].kind != "tests" or g in have]


def worker_plan(run: StageRun, plugins: Sequence[str]) -> dict[str, Any] | None:
    """The plan for the workers (built-in types and bytes only: what execnet sends), or
    None when a table cannot be pickled."""
    config = run.config
    gates = _sent_gates(run)
    try:
        tables = {
            "ledger": _pickled(config.ledger),
            "stages": {name: _pickled(stage) for name, stage in config.stages.items()},
            "gates": {name: _pickled(config.gates[name]) for name in _tables_sent(run, gates)},
        }
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    plan = run.plan
    return {
        "version": PLAN_VERSION,
        "plugins": list(plugins),
        "stage": run.stage,
        "release_id": run.release_id,
        "image": run.image,
        "rootdir": str(run.rootdir),
        "reports_dir": str(run.reports_dir),
        "ledger_path": str(run.ledger_path),
        "override_requires": run.override_requires,
        "approved_via": run.approved_via,
        "plan": {
            "order": list(plan.order),
            "depends_on": {g: list(deps) for g, deps in plan.depends_on.items()},
            "serial": sorted(plan.serial),
            "markers": {g: list(v) for g, v in plan.markers.items()},
            "paths": {g: list(v) for g, v in plan.paths.items()},
        },
        "config": {
            "source": config.source,
            "reports_dir": config.reports_dir,
            "secrets": list(config.secrets),
            "gate_names": list(config.gates),
            "common": {name: config.common[name].to_json() for name in gates},
            **tables,
        },
    }


def _tuples(mapping: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(values) for key, values in mapping.items()}


def received_plan(config: pytest.Config) -> tuple[StageRun, list[str]] | None:
    """On an xdist worker given a plan: its run and the plugins to register; else None
    (the controller, a run without xdist, or a controller that sent no plan)."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is None or PLAN_KEY not in workerinput:
        return None
    sent: dict[str, Any] = workerinput[PLAN_KEY]
    if sent.get("version") != PLAN_VERSION:
        raise pytest.UsageError(
            f"pytest-release: this xdist worker reads stage plans of version {PLAN_VERSION}, "
            f"the controller sent version {sent.get('version')!r}; run the controller and "
            "the workers with the same pytest-release"
        )
    plan, tables = sent["plan"], sent["config"]
    pickled_ledger: bytes = tables["ledger"]
    stage_gates = set(tables["common"])

    def unsent(name: str) -> GateConfig | None:
        # A tests gate of the stage whose table the controller never loaded (it ran
        # from a cached plan): this worker validates the configuration itself.
        if name not in stage_gates:
            return None
        from pytest_release.stage.resolve import load_config

        return load_config(config).for_stage(sent["stage"]).gates[name]

    gate_tables: PickledTables[GateConfig] = PickledTables(
        "gates", tuple(tables["gate_names"]), tables["gates"], unsent
    )
    release_config = ReleaseConfig(
        source=tables["source"],
        reports_dir=tables["reports_dir"],
        secrets=tuple(tables["secrets"]),
        ledger_table=Lazy(lambda: pickle.loads(pickled_ledger)),  # our controller's
        stages=PickledTables("stages", tuple(tables["stages"]), tables["stages"]),
        gates=gate_tables,
        common=common_settings(
            gate_tables,
            {name: CommonGateSettings.from_json(value) for name, value in tables["common"].items()},
        ),
    )
    run = StageRun(
        stage=sent["stage"],
        release_id=sent["release_id"],
        image=sent["image"],
        config=release_config,
        plan=StagePlan(
            stage=sent["stage"],
            order=tuple(plan["order"]),
            depends_on=_tuples(plan["depends_on"]),
            serial=frozenset(plan["serial"]),
            markers=_tuples(plan["markers"]),
            paths=_tuples(plan["paths"]),
        ),
        rootdir=Path(sent["rootdir"]),
        reports_dir=Path(sent["reports_dir"]),
        ledger_path=Path(sent["ledger_path"]),
        override_requires=sent["override_requires"],
        approved_via=sent["approved_via"],
    )
    return run, list(sent["plugins"])

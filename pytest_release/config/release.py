"""The release configuration: ``[tool.pytest-release]`` validated once at start-up.

The raw TOML table is merged over :mod:`pytest_release.config.defaults` and validated with
pydantic.  Gate tables are validated with the model registered for their ``kind``
(see the ``pytest_release_gate_kinds`` hook), so gate plugins add their own keys
without editing this module, and unknown keys are still errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from pytest_release.config.checks import stage_problems
from pytest_release.config.common_gate import common_settings
from pytest_release.config.defaults import DEFAULT_GATES, DEFAULT_STAGES
from pytest_release.config.errors import format_errors as _format_errors
from pytest_release.config.files import deep_merge as _deep_merge
from pytest_release.config.files import merge_layers as merge_layers
from pytest_release.config.files import read_table as read_table
from pytest_release.config.gates import GateTables as _Gates
from pytest_release.config.gates import deployment_claims
from pytest_release.config.identity import identity_problems
from pytest_release.config.lazy import Lazy
from pytest_release.config.location import gate_location as gate_location
from pytest_release.config.release_config import Environment as Environment
from pytest_release.config.release_config import ReleaseConfig as ReleaseConfig
from pytest_release.config.tables import (
    EnvironmentConfig,
    GateConfig,
    ReleaseConfigModel,
)
from pytest_release.errors import ReleaseConfigError

STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _merge_tables(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """User tables replace defaults key by key, sub-tables too (a stage's ``gates`` list
    replaces the default list; keys it does not set keep their default, so a profile that
    sets only ``[stages.canary-2.rollout] hold`` keeps canary-2's weight and replicas)."""
    merged: dict[str, Any] = {name: dict(table) for name, table in defaults.items()}
    for name, table in user.items():
        if isinstance(table, Mapping) and isinstance(merged.get(name), dict):
            merged[name] = _deep_merge(merged[name], table)
        else:
            merged[name] = table
    return merged


def load_release_config(
    table: Mapping[str, Any],
    source: str,
    gate_kinds: Mapping[str, type[GateConfig]],
) -> ReleaseConfig:
    """Validate ``table`` (merged over the built-in defaults); errors name ``source``."""
    raw = dict(table)
    raw["stages"] = _merge_tables(
        DEFAULT_STAGES, _as_table(raw.get("stages", {}), source, "stages")
    )
    raw["gates"] = _merge_tables(DEFAULT_GATES, _as_table(raw.get("gates", {}), source, "gates"))
    try:
        model = ReleaseConfigModel.model_validate(raw)
    except ValidationError as exc:
        raise ReleaseConfigError(_format_errors(source, "", exc)) from None

    gates = _Gates(source, gate_kinds)
    for name, gate_table in model.gates.items():
        _check_kind(name, gate_table, gate_kinds, source, "gates")
        gates.add(name, gate_table, validate=gate_table != DEFAULT_GATES.get(name))
    environments = {
        env_name: _environment(env_name, env, model.gates, gate_kinds, source)
        for env_name, env in model.environments.items()
    }

    problems: list[str] = []
    for stage_name, stage in model.stages.items():
        if not STAGE_NAME.match(stage_name):
            problems.append(
                f"  stages.{stage_name}: invalid stage name; use lower-case letters, digits, "
                "'-', '_' or '.'"
            )
        if not stage.gates:
            problems.append(
                f"  stages.{stage_name}.gates = []: a stage needs at least one gate; list the "
                f'gates it runs, e.g. gates = ["unit"] (gates: {", ".join(gates)})'
            )
        for gate_name in stage.gates:
            if gate_name not in gates:
                problems.append(
                    f"  stages.{stage_name}.gates: unknown gate {gate_name!r}; "
                    f"gates: {', '.join(gates)}"
                )
        if stage.target is not None and stage.target not in environments:
            problems.append(
                f"  stages.{stage_name}.target = {stage.target!r}: unknown environment; "
                + (
                    f"environments: {', '.join(environments)}"
                    if environments
                    else "define it as a table [environments.<name>]"
                )
            )
        for required in stage.requires:
            if required not in model.stages:
                problems.append(
                    f"  stages.{stage_name}.requires: unknown stage {required!r}; "
                    f"stages: {', '.join(model.stages)}"
                )
    problems += stage_problems(model.stages)
    tables: dict[str | None, Mapping[str, GateConfig]] = {None: gates}
    tables.update({name: env.gates for name, env in environments.items()})
    runs = [(stage.target, stage.gates) for stage in model.stages.values()]
    problems += identity_problems(deployment_claims(runs, tables))
    for gate_name in gates.built():
        for dep in gates[gate_name].after or ():
            if dep not in gates:
                problems.append(
                    f"  gates.{gate_name}.after: unknown gate {dep!r}; gates: {', '.join(gates)}"
                )
    if problems:
        raise ReleaseConfigError(
            "\n".join([f"invalid release configuration in {source}:", *problems])
        )
    return ReleaseConfig(
        source=source,
        reports_dir=model.reports_dir,
        secrets=model.secrets,
        ledger_table=Lazy.ready(model.ledger),
        stages=dict(model.stages),
        gates=gates,
        common=common_settings(gates),
        environments=environments,
    )


def _check_kind(
    name: str,
    table: Mapping[str, Any],
    gate_kinds: Mapping[str, type[GateConfig]],
    source: str,
    prefix: str,
) -> None:
    kind = table.get("kind", "tests")
    if not isinstance(kind, str) or kind not in gate_kinds:
        raise ReleaseConfigError(
            f"invalid release configuration in {source}:\n  {prefix}.{name}.kind = {kind!r}: "
            f"unknown gate kind; allowed: {', '.join(sorted(gate_kinds))}"
        )


def _environment(
    name: str,
    env: EnvironmentConfig,
    gate_tables: Mapping[str, Mapping[str, Any]],
    gate_kinds: Mapping[str, type[GateConfig]],
    source: str,
) -> Environment:
    """The gates as ``name`` sees them, validated like the production ones (errors name
    ``environments.<name>.gates.<gate>``)."""
    unknown = [g for g in env.gates if g not in gate_tables]
    if unknown:
        raise ReleaseConfigError(
            f"invalid release configuration in {source}:\n  environments.{name}.gates: "
            f"unknown gate {unknown[0]!r}; gates: {', '.join(gate_tables)}"
        )
    prefix = f"environments.{name}.gates"
    gates = _Gates(source, gate_kinds, prefix)
    for gate, table in gate_tables.items():
        merged = _deep_merge(dict(table), env.gates.get(gate, {}))
        _check_kind(gate, merged, gate_kinds, source, prefix)
        # What the environment changes is checked now; the rest as the production gates.
        gates.add(gate, merged, validate=gate in env.gates or merged != DEFAULT_GATES.get(gate))
    return Environment(name, env.description, dict(env.env), gates, common_settings(gates))


def _as_table(value: object, source: str, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReleaseConfigError(
            f"invalid release configuration in {source}:\n  {key} = {value!r}: must be a table"
        )
    return value

"""Resolve the session's settings in one place: CLI > ini > release config > default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from pytest_release.config import options
from pytest_release.config.plan import build_plan
from pytest_release.config.release import (
    ReleaseConfig,
    load_release_config,
    merge_layers,
    read_table,
)
from pytest_release.config.tables import GateConfig
from pytest_release.errors import ReleaseConfigError
from pytest_release.ledger.stage_run import StageRun


def gate_kinds(config: pytest.Config) -> Mapping[str, type[GateConfig]]:
    """``tests``, the built-in kinds (a kind's table is imported only when the
    configuration names it) and the kinds other plugins add with the hook."""
    from pytest_release.gates import BUILTIN_GATES, GateKinds, builtin_gate_model

    extra: dict[str, type[GateConfig]] = {}
    for contributed in config.hook.pytest_release_gate_kinds():
        for kind, model in (contributed or {}).items():
            known = extra.get(kind) or (
                GateConfig
                if kind == "tests"
                else builtin_gate_model(kind)
                if kind in BUILTIN_GATES
                else None
            )
            if known is not None and known is not model:
                raise pytest.UsageError(f"gate kind {kind!r} is provided by two plugins")
            extra[kind] = model
    return GateKinds(extra)


def load_config(config: pytest.Config) -> ReleaseConfig:
    explicit = options.cli_or_ini_list(config, options.RELEASE_CONFIG)
    try:
        if explicit:
            tables = []
            for value in explicit:
                if not value.strip():
                    raise ReleaseConfigError(
                        f"{options.RELEASE_CONFIG.flag} is empty; pass the path of a TOML file "
                        "(e.g. --release-config=release.toml), or leave the option out to use "
                        "[tool.pytest-release] in pyproject.toml"
                    )
                path = Path(value)
                if not path.is_absolute():
                    path = Path(config.invocation_params.dir) / path
                pyproject = path.name == "pyproject.toml"
                table = read_table(path, pyproject=pyproject)
                if pyproject and not table:
                    raise ReleaseConfigError(
                        f"{path} has no [tool.pytest-release] table (or an empty one), but "
                        f"{options.RELEASE_CONFIG.flag} names it; add the table, or pass the "
                        "file that holds your stages and gates"
                    )
                tables.append((path, table))
            table = merge_layers([t for _, t in tables])
            source = " + ".join(str(p) for p, _ in tables)
        else:
            path = config.rootpath / "pyproject.toml"
            table = read_table(path, pyproject=True) if path.is_file() else {}
            source = str(path) if path.is_file() else "the built-in defaults"
        return load_release_config(table, source, gate_kinds(config))
    except ReleaseConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _path(config: pytest.Config, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else config.rootpath / path


def resolve_ledger_path(config: pytest.Config, release_config: ReleaseConfig) -> Path:
    return _path(config, options.cli_or_ini(config, options.LEDGER) or release_config.ledger.path)


def resolve_run(config: pytest.Config, stage: str) -> StageRun:
    release_config = load_config(config)
    if not stage.strip():
        # `--stage=` (an unset CI variable) must not silently run plain pytest.
        raise pytest.UsageError(
            f"--stage is empty: pass --stage=NAME, one of the stages in "
            f"{release_config.source}: {', '.join(release_config.stages)}"
        )
    try:
        only = config.getoption(options.ONLY_GATES.dest)
        # The gates as the stage runs them (its target environment's settings), then its plan.
        release_config = release_config.for_stage(stage)
        plan = build_plan(release_config, stage, tuple(only) if only else None)
    except ReleaseConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    target = release_config.stages[stage].target
    if target is not None:
        # The stage works on that environment: its tools and tests (and xdist workers,
        # started later) see its variables, e.g. the URL the smoke tests call.  A variable
        # the job already sets wins (a CI variable beats the file, as the CLI does).
        for name, value in release_config.environments[target].env.items():
            os.environ.setdefault(name, value)
    reports_dir = options.cli_or_ini(config, options.REPORTS_DIR) or release_config.reports_dir
    try:
        release_id = options.resolve_release_id(
            options.cli_or_ini(config, options.RELEASE_ID), config.rootpath
        )
    except pytest.UsageError as exc:
        # The refused id is quoted in the message: mask the secrets it may hold.
        from pytest_release.report.redact import Redactor

        raise pytest.UsageError(Redactor.from_env(release_config.secrets)(str(exc))) from None
    return StageRun(
        stage=stage,
        release_id=release_id,
        image=options.cli_or_ini(config, options.IMAGE),
        config=release_config,
        plan=plan,
        rootdir=config.rootpath,
        reports_dir=_path(config, reports_dir),
        ledger_path=resolve_ledger_path(config, release_config),
        override_requires=options.cli_or_ini(config, options.OVERRIDE_REQUIRES),
        approved_via=options.cli_or_ini(config, options.APPROVED_VIA),
    )

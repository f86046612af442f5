"""Resolve the session's settings in one place: CLI > ini > release config > default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.config import options
from pytest_release.config.files import merge_layers, read_table
from pytest_release.config.plan import build_plan
from pytest_release.config.release_config import ReleaseConfig
from pytest_release.errors import ReleaseConfigError
from pytest_release.ledger.stage_run import StageRun

if TYPE_CHECKING:
    from pytest_release.config.plan_cache import PlanCache
    from pytest_release.config.tables import GateConfig


def gate_kinds(config: pytest.Config) -> Mapping[str, type[GateConfig]]:
    """``tests``, the built-in kinds (a kind's table is imported only when the
    configuration names it) and the kinds other plugins add with the hook."""
    from pytest_release.config.tables import GateConfig
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


def _read_configuration(config: pytest.Config) -> tuple[dict[str, Any], str]:
    """The configuration's table (its files layered) and its source, as read."""
    explicit = options.cli_or_ini_list(config, options.RELEASE_CONFIG)
    if not explicit:
        path = config.rootpath / "pyproject.toml"
        if not path.is_file():
            return {}, "the built-in defaults"
        return read_table(path, pyproject=True), str(path)
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
    return merge_layers([t for _, t in tables]), " + ".join(str(p) for p, _ in tables)


def _plan_cache_usable(config: pytest.Config) -> bool:
    """The cache is on, and no plug-in adds gate kinds (their code is not in its key)."""
    if not options.plan_cache_enabled(config):
        return False
    implementations = config.pluginmanager.hook.pytest_release_gate_kinds.get_hookimpls()
    return all(
        getattr(impl.plugin, "__name__", "").startswith("pytest_release.")
        for impl in implementations
    )


def load_config_cached(config: pytest.Config) -> tuple[ReleaseConfig, PlanCache | None]:
    """The validated configuration, from the plan cache when it has this one's entry
    (:mod:`pytest_release.config.plan_cache`), and the cache to keep it in."""
    try:
        table, source = _read_configuration(config)
        cache = None
        if _plan_cache_usable(config):
            from pytest_release.config.plan_cache import PlanCache

            cache = PlanCache.for_table(config.rootpath, table, source)

        def validate() -> ReleaseConfig:
            from pytest_release.config.release import load_release_config

            return load_release_config(table, source, gate_kinds(config))

        cached = cache.read(validate) if cache is not None else None
        return (cached if cached is not None else validate()), cache
    except ReleaseConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def load_config(config: pytest.Config) -> ReleaseConfig:
    return load_config_cached(config)[0]


def _path(config: pytest.Config, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else config.rootpath / path


def resolve_ledger_path(config: pytest.Config, release_config: ReleaseConfig) -> Path:
    return _path(config, options.cli_or_ini(config, options.LEDGER) or release_config.ledger.path)


def resolve_run(config: pytest.Config, stage: str) -> StageRun:
    release_config, cache = load_config_cached(config)
    validated = release_config
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
    if cache is not None:
        # What the plan read of the stage's gates is there for the next stage.
        cache.write(validated)
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

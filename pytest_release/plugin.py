"""pytest-release entry point: options, the ``gate`` marker, and the stage switch.

Without ``--stage`` nothing else is registered, so plain pytest behaves exactly as
before.  With it, a :class:`~pytest_release.stage.session.StageSession` takes over.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING

import pytest

from pytest_release import gates, hookspecs
from pytest_release.config import options

if TYPE_CHECKING:
    from pytest_release.config.release import ReleaseConfig

# Plugins of the spine that are not gate kinds: coverage thresholds of any gate, and the
# Kubernetes platform's ledger store and end-of-stage reachability check.
COVERAGE_PLUGIN = "pytest_release.gating.coverage"
KUBERNETES_PLUGIN = "pytest_release.gates.canary.kubernetes"
SUPPORT_PLUGINS: tuple[str, ...] = (COVERAGE_PLUGIN, KUBERNETES_PLUGIN)


def _register(config: pytest.Config, module_names: Iterable[str]) -> None:
    for module_name in module_names:
        name = f"pytest-release:{module_name}"
        if config.pluginmanager.get_plugin(name) is None:
            config.pluginmanager.register(importlib.import_module(module_name), name)


def _register_builtin_plugins(config: pytest.Config) -> None:
    """Register every built-in gate plugin and support plugin (``--release-status``)."""
    _register(config, (*gates.BUILTIN_GATE_PLUGINS, *SUPPORT_PLUGINS))


def stage_plugins(release_config: ReleaseConfig, gate_names: Iterable[str]) -> list[str]:
    """The built-in plugins a stage of ``gate_names`` needs: those of its gates' kinds,
    coverage when one of them has a threshold, Kubernetes for its ledger or canaries.
    The others are not imported: their hooks would run for every test for nothing."""
    used = [release_config.common[name] for name in gate_names]
    kinds = {gate.kind for gate in used}
    needed = [gates.builtin_gate_plugin(kind) for kind in gates.BUILTIN_GATES if kind in kinds]
    if any(gate.coverage is not None for gate in used):
        needed.append(COVERAGE_PLUGIN)
    if "canary" in kinds or release_config.ledger.backend == "kubernetes":
        needed.append(KUBERNETES_PLUGIN)
    return needed


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    # Every plugin and initial conftest has added its options now: only here can the
    # short names (--image, --gate, ...) be added without ever colliding with theirs.
    result = yield
    options.add_aliases(parser)
    return result


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gate(name): put the test in the release gate NAME (see --stage)"
    )
    stage = options.cli_or_ini(config, options.STAGE)
    if stage is None or config.getoption(options.RELEASE_STATUS.dest):
        return
    from pytest_release.stage.invocation import INFORMATION_OPTIONS
    from pytest_release.stage.session import (
        STAGE_SESSION_NAME,
        StageSession,
        XdistController,
        _uses_xdist,
    )

    # An xdist worker takes the run its controller resolved and validated (no pydantic,
    # no TOML); the controller, or a run without xdist, resolves it here.
    received = None
    if hasattr(config, "workerinput"):
        from pytest_release.stage.worker_plan import received_plan

        received = received_plan(config)
    if received is None:
        from pytest_release.stage.resolve import resolve_run

        run = resolve_run(config, stage)
        plugins = stage_plugins(run.config, run.plan.order)
    else:
        run, plugins = received
    _register(config, plugins)
    session = StageSession(config, run)
    if not session.is_worker and session.runs_no_test not in INFORMATION_OPTIONS:
        try:
            # Inspecting a stage (--collect-only, --setup-plan, ...) checks that it may
            # run, but runs nothing: no report is written, no lock taken.
            session.check_requirements()
            if not session.runs_no_test:
                session.check_release_image()
                session.check_report_paths()
                session.acquire_rollout_lock()
        except BaseException:
            # Refused before the session is registered: nothing else removes its run dir.
            session.run_dir.remove()
            raise
    config.pluginmanager.register(session, STAGE_SESSION_NAME)
    if _uses_xdist(config):
        config.pluginmanager.register(
            XdistController(session, plugins), f"{STAGE_SESSION_NAME}-xdist"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption(options.RELEASE_STATUS.dest):
        return None
    from pytest_release.errors import LedgerError
    from pytest_release.ledger.ledger import Ledger, abandoned_rollouts, format_status, open_store
    from pytest_release.report.redact import Redactor
    from pytest_release.stage.resolve import load_config, resolve_ledger_path

    _register_builtin_plugins(config)
    release_config = load_config(config)
    explicit_id = options.cli_or_ini(config, options.RELEASE_ID)
    release_id: str | None
    try:
        release_id = options.resolve_release_id(explicit_id, config.rootpath)
    except pytest.UsageError:
        if explicit_id is not None:
            raise
        release_id = None  # no default id: list the ledger's recent releases instead
    # Stages record a release id that holds a secret masked (stage/session.py).
    if release_id is not None:
        release_id = Redactor.from_env(release_config.secrets)(release_id)
    try:
        store = open_store(
            release_config.ledger,
            resolve_ledger_path(config, release_config),
            config.rootpath,
            config.hook,
        )
        ledger = Ledger(store)
        all_entries = ledger.entries()
        abandoned = abandoned_rollouts(store, all_entries)
    except LedgerError as exc:
        raise pytest.UsageError(str(exc)) from None
    entries = [e for e in all_entries if e.release_id == release_id]
    if explicit_id is None and not entries:
        # The default id (the commit) is often not the id a release was recorded under.
        from pytest_release.ledger.recent_releases import format_recent_releases

        warnings = [a.warning() for a in abandoned]
        print("\n".join([format_recent_releases(all_entries, release_id), *warnings]))
        return 0
    assert release_id is not None  # an empty default id raised above
    print(format_status(entries, release_id, abandoned))
    return 0

"""A third-party platform: ``examples/platform-plugin`` (``platform.type = "procs"``,
replicas are local processes) installed with pip into a directory of its own, found
through its entry point, validated by its own model, run by real stages behind a real
HAProxy, and held to the same contract as the built-ins
(tests/support/platform_contract.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_release.canary.registry import build_rollout, registry
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.settings import CanarySettings
from tests.canary.canary_support import FAULT_SERVICE, JUDGE, SAMPLER, haproxy_settings, new_port
from tests.canary.plugin_support import distribution, registered
from tests.support.examples import installed_example
from tests.support.platform_contract import CASES, Case, Subject, case_ids
from tests.support.spine import project, run_stage

COMMAND = ["python3", str(FAULT_SERVICE), "--port", "{port}", "--version", "{image}"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed by pip into a directory of its own."""
    return installed_example("platform-plugin", "pytest_release_procs", tmp_path_factory)


@pytest.fixture
def procs(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The plug-in on sys.path, the registry reloaded with it (and without it after)."""
    with registered(plugin_site, monkeypatch):
        import procs_platform

        yield procs_platform


def _settings(module: ModuleType, state_dir: Path, **platform: Any) -> CanarySettings:
    values = {"type": "procs", "command": COMMAND, "stable_image": "v1", **platform}
    return haproxy_settings(module.ProcsPlatformConfig(state_dir=str(state_dir), **values))


def _end_everything(module: ModuleType, state_dir: Path, root: Path) -> None:
    config = module.ProcsPlatformConfig(type="procs", command=COMMAND, state_dir=str(state_dir))
    platform = module.ProcsPlatform(config, root)
    try:
        platform.cleanup()
    finally:
        HAProxyRouter(HAProxyConfig(), platform.state_dir).stop()


def test_the_registry_finds_the_plugin_through_its_entry_point(procs: ModuleType) -> None:
    found = registry()
    assert found.platforms["procs"] is procs.PLATFORM
    assert procs.ProcsPlatformConfig in found.platform_models()
    # The built-ins are found the same way, from pytest-release's own entry points.
    assert {"local-process", "local-docker", "kubernetes", "cloud-run"} <= set(found.platforms)


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_the_plugin_platform_keeps_the_contract(
    case: Case, procs: ModuleType, tmp_path: Path
) -> None:
    rollout = build_rollout(_settings(procs, tmp_path / "state"), tmp_path)
    assert isinstance(rollout.platform, procs.ProcsPlatform)
    try:
        case(Subject(rollout, stable_image="v1", release_image="v2", requests=20))
    finally:
        _end_everything(procs, tmp_path / "state", tmp_path)


def _stage_toml(router_port: int, command: list[str]) -> str:
    table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in SAMPLER.items())
    # Not about latency: a loaded machine slows both versions alike.
    lenient = {**JUDGE, "max_p95_latency_ms": 30000}
    judge = "\n".join(
        f"{k} = {json.dumps(v)}" for k, v in lenient.items() if not isinstance(v, dict)
    )
    return f"""
[stages.canary-1]
requires = []
rollout = {{ action = "canary", hold = "2s", interval = "1s", replicas = 1, weight = 10 }}
[stages.canary-3]
requires = ["canary-1"]
rollout = {{ action = "promote", replicas = 2, weight = 100, hold = "0s" }}

[gates.canary]
paths = []
verify_requests = 10
[gates.canary.platform]
type = "procs"
command = {json.dumps(command)}
stable_image = "v1"
state_dir = "state"
[gates.canary.router]
port = {router_port}
[gates.canary.sampler]
{table}
[gates.canary.judge]
{judge}
comparison = {{ alpha = 0.001, min_samples = 10 }}
"""


@pytest.fixture
def plugin_project(
    pytester: pytest.Pytester, procs: ModuleType, plugin_site: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A project whose stages run the plug-in (installed for their processes too)."""
    paths = [str(plugin_site), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    try:
        yield pytester.path
    finally:
        _end_everything(procs, pytester.path / "state", pytester.path)


def test_stages_run_a_canary_and_promote_it_on_the_plugin_platform(
    pytester: pytest.Pytester, procs: ModuleType, plugin_project: Path
) -> None:
    project(pytester, _stage_toml(new_port(), COMMAND))
    first = run_stage(pytester, "canary-1", "--image=v2")
    assert first.ret == 0, first.stdout.str()
    status = procs.ProcsPlatform(
        _settings(procs, plugin_project / "state").platform, plugin_project
    ).status()
    assert (status.stable_image, status.canary_image) == ("v1", "v2")
    promoted = run_stage(pytester, "canary-3", "--image=v2")
    assert promoted.ret == 0, promoted.stdout.str()
    platform = procs.ProcsPlatform(
        _settings(procs, plugin_project / "state").platform, plugin_project
    )
    status = platform.status()
    assert (status.stable_image, status.canary_image, status.previous_image) == ("v2", None, "v1")
    assert len(status.group("stable")) == 2
    assert all(r.running and r.ready for r in status.group("stable"))


def _usage_errors(pytester: pytest.Pytester) -> str:
    """What canary-1 printed on stderr when it stopped with a usage error (not a crash)."""
    result = run_stage(pytester, "canary-1", "--image=v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    errors = result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + errors
    return errors


def test_a_bad_plugin_table_is_a_usage_error_from_the_plugins_own_model(
    pytester: pytest.Pytester, plugin_project: Path
) -> None:
    command = ["python3", "app.py"]
    project(pytester, _stage_toml(new_port(), command))
    errors = _usage_errors(pytester)
    assert "gates.canary.platform.command = ['python3', 'app.py']" in errors, errors
    assert "never names {port}" in errors, errors
    assert "add e.g. '--port', '{port}'" in errors, errors


def test_an_unregistered_platform_type_lists_the_registered_ones(
    pytester: pytest.Pytester, plugin_project: Path
) -> None:
    project(pytester, _stage_toml(new_port(), COMMAND).replace('type = "procs"', 'type = "nomad"'))
    errors = _usage_errors(pytester)
    assert "platform.type = 'nomad' is not registered" in errors, errors
    assert "'procs'" in errors, errors


def test_a_plugin_that_cannot_load_is_a_usage_error_naming_its_entry_point(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = distribution(
        tmp_path / "site",
        "broken-plugin",
        "pytest_release.platforms",
        "nomad = no_such_module:PLATFORM",
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    project(pytester, _stage_toml(new_port(), COMMAND).replace('type = "procs"', 'type = "nomad"'))
    errors = _usage_errors(pytester)
    assert "entry point 'nomad' of group 'pytest_release.platforms'" in errors, errors
    assert "from broken-plugin" in errors, errors
    assert "No module named 'no_such_module'" in errors, errors

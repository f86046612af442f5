"""Staging as a deployment environment: the same canary gate with another router port and
state directory, a staging stage that deploys the release there and runs the smoke gate
against it, and production stages that require it.  Real HAProxy and replica processes
for both environments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from tests.canary.canary_support import (
    bootstrap_main,
    canary_toml,
    load_through,
    new_port,
    platform_config,
    teardown_platform,
)
from tests.support.junit import cases_by_name
from tests.support.spine import XDIST_MODES, ledger_runs, project, run_stage

STAGING_STATE = ".pytest-release/staging"

# 50 requests through the environment's router, every one must succeed and be served by
# the release under test (the smoke gate of the stage).
SMOKE_TEST = """
import http.client
import os


def test_every_request_succeeds_on_the_release():
    host, port = os.environ["SHOP_ADDRESS"].split(":")
    failures, versions = [], set()
    for _ in range(50):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        conn.close()
        versions.add(response.getheader("X-Version"))
        if response.status != 200:
            failures.append(response.status)
    assert failures == [], f"{len(failures)} of 50 requests failed"
    assert versions == {os.environ["EXPECTED_VERSION"]}
"""


def _toml(prod_port: int, staging_port: int) -> str:
    toml = canary_toml(
        router_port=prod_port,
        extra=f"""
[gates.smoke]
paths = ["tests/smoke/*"]

[environments.staging]
description = "Staging: its own router and replicas."
env = {{ SHOP_ADDRESS = "127.0.0.1:{staging_port}" }}
[environments.staging.gates.canary]
router = {{ port = {staging_port} }}
platform = {{ state_dir = "{STAGING_STATE}" }}

[stages.staging]
target = "staging"
gates = ["canary", "smoke"]
requires = []
rollout = {{ action = "promote", replicas = 1, weight = 100, hold = "0s" }}
""",
    )
    # Production's first step needs the release to have passed staging.
    return toml.replace(
        "[stages.canary-1]\nrequires = []", '[stages.canary-1]\nrequires = ["staging"]'
    )


def _state(root: Path, state_dir: str) -> tuple[str | None, int, tuple[int, int]]:
    platform = LocalPlatform(platform_config(state_dir=state_dir), root)
    status = platform.status()
    weights = HAProxyRouter(HAProxyConfig(), platform.state_dir).weights()
    return status.stable_image, len(status.group("canary")), (weights.stable, weights.canary)


@pytest.fixture
def two_environments(pytester: pytest.Pytester) -> object:
    try:
        yield pytester.path
    finally:
        try:
            teardown_platform(pytester.path)
        finally:
            platform = LocalPlatform(platform_config(state_dir=STAGING_STATE), pytester.path)
            router = HAProxyRouter(HAProxyConfig(), platform.state_dir)
            try:
                platform.cleanup()
            finally:
                router.stop()


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_release_passes_staging_then_production_requires_it(
    pytester: pytest.Pytester,
    two_environments: Path,
    xdist: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prod, staging = new_port(), new_port()
    project(pytester, _toml(prod, staging), **{"tests/smoke/test_smoke.py": SMOKE_TEST})
    bootstrap_main(pytester.path, prod)
    monkeypatch.setenv("EXPECTED_VERSION", "v2")
    early = run_stage(pytester, "canary-1", "--image=v2", *xdist)
    assert early.ret == 4
    assert "requires 'staging' (has not run)" in early.stderr.str()
    with load_through(prod) as production:
        result = run_stage(pytester, "staging", "--image=v2", *xdist)
        assert result.ret == 0, result.stdout.str()
    # Staging runs the release; production never saw it.
    assert _state(pytester.path, STAGING_STATE) == ("v2", 0, (100, 0))
    assert _state(pytester.path, ".pytest-release/canary") == ("v1", 0, (100, 0))
    assert set(production.versions) == {"v1"}
    assert production.failures == []
    cases = cases_by_name(pytester.path / "reports" / "staging.xml")
    assert cases["test_every_request_succeeds_on_the_release"].outcome == "passed"
    assert [(r["stage"], r["outcome"]) for r in ledger_runs(pytester.path)] == [
        ("staging", "passed")
    ]
    # Production's first canary stage is no longer refused (collected only: its hold is
    # the canary tests' subject, not this one's).
    canary = run_stage(pytester, "canary-1", "--image=v2", "--collect-only", *xdist)
    assert canary.ret == 0, canary.stdout.str() + canary.stderr.str()
    assert "requires" not in canary.stderr.str()


def test_bad_release_stops_at_staging_and_staging_returns_to_its_version(
    pytester: pytest.Pytester, two_environments: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, staging = new_port(), new_port()
    project(pytester, _toml(prod, staging), **{"tests/smoke/test_smoke.py": SMOKE_TEST})
    bootstrap_main(pytester.path, prod)
    monkeypatch.setenv("EXPECTED_VERSION", "v2-errors")
    result = run_stage(pytester, "staging", "--image=v2-errors")
    assert result.ret == 1, result.stdout.str()
    # Staging is back on the version it ran before, production untouched.
    assert _state(pytester.path, STAGING_STATE) == ("v1", 0, (100, 0))
    assert _state(pytester.path, ".pytest-release/canary") == ("v1", 0, (100, 0))
    run = ledger_runs(pytester.path)[-1]
    assert (run["stage"], run["outcome"]) == ("staging", "rolled-back")
    refused = run_stage(pytester, "canary-1", "--image=v2-errors")
    assert refused.ret == 4
    assert "requires 'staging' (last run rolled-back)" in refused.stderr.str()
    # The teardown command finds both environments' platforms and routers by itself.
    done = subprocess.run(
        [sys.executable, "-m", "pytest_release.canary.teardown", str(pytester.path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert done.count("router: ended HAProxy") == 2, done
    assert done.count("platform local-process: ended") == 2, done


def test_unknown_target_and_bad_environment_settings_are_usage_errors(
    pytester: pytest.Pytester,
) -> None:
    toml = _toml(new_port(), new_port())
    project(pytester, toml.replace('target = "staging"', 'target = "stagin"'))
    result = run_stage(pytester, "staging", "--image=v2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*stages.staging.target = 'stagin': unknown environment; environments: staging*"]
    )
    project(pytester, toml.replace("router = { port = ", "router = { port = -"))
    result = run_stage(pytester, "staging", "--image=v2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*environments.staging.gates.canary.router.port*"])

"""The canary gate on the cloud-run platform, end to end: real pytest stages (subprocess)
drive the platform through the real client library against the Admin API emulator, whose
revisions are real processes; a load loop through the service URL counts every request."""

from __future__ import annotations

import pytest

from pytest_release.canary.platforms.cloud_run.config import CloudRunRouterConfig
from pytest_release.canary.platforms.cloud_run.platform import CloudRunPlatform
from pytest_release.canary.platforms.cloud_run.router import CloudRunRouter
from tests.canary.canary_support import load_through
from tests.cloud_run.conftest import PROJECT, REGION, SERVICE, platform_config
from tests.cloud_run.emulator import CloudRunEmulator
from tests.support.spine import XDIST_MODES, ledger_runs, project, run_stage, stage_cases
from tests.support.stages import bluegreen_stages, canary_stages

NAME = f"projects/{PROJECT}/locations/{REGION}/services/{SERVICE}"


def _toml(endpoint: str, hold: str = "4s", insufficient: int = 0) -> str:
    # 2 s intervals: enough requests per interval on a loaded machine (xdist in xdist).
    rollout = f'action = "canary", hold = "{hold}", interval = "2s"'
    return f"""
{canary_stages(rollout)}

[gates.canary]
paths = []
verify_requests = 10
[gates.canary.platform]
type = "cloud-run"
project = "{PROJECT}"
region = "{REGION}"
service = "{SERVICE}"
api_endpoint = "{endpoint}"
credentials = "anonymous"
operation_timeout = "60s"
[gates.canary.router]
type = "cloud-run"
[gates.canary.sampler]
rate = 10
direct_rate = 40
concurrency = 48
health_interval = "0.5s"
status_interval = "0.5s"
[gates.canary.judge]
min_requests = 10
max_p95_latency_ms = 2000
comparison = {{ alpha = 0.001, min_samples = 10 }}
max_insufficient_intervals = {insufficient}
"""


def _served(emulator: CloudRunEmulator) -> dict[str, tuple[int, str]]:
    """tag -> (percent, image) as the emulator serves it."""
    state = emulator.state(NAME)
    return {
        t.tag: (t.percent, state.revisions[t.revision].revision.containers[0].image)
        for t in state.service.traffic_statuses
        if t.tag
    }


def _served_after(
    pytester: pytest.Pytester, emulator: CloudRunEmulator, stage: str
) -> dict[str, tuple[int, str]]:
    """Run ``stage`` for the release image v2 (it must pass); then what the emulator serves."""
    result = run_stage(pytester, stage, "--image=v2")
    assert result.ret == 0, result.stdout.str()
    return _served(emulator)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_good_canary_is_promoted_then_the_release_is_rolled_back_to_the_previous_revision(
    pytester: pytest.Pytester, emulator: CloudRunEmulator
) -> None:
    project(pytester, _toml(emulator.endpoint))
    service_url = emulator.state(NAME).service.uri
    with load_through(_port(service_url)) as load:
        served = _served_after(pytester, emulator, "canary-1")
        assert served == {"stable": (90, "v1"), "canary": (10, "v2")}
        served = _served_after(pytester, emulator, "canary-2")
        assert served == {"stable": (50, "v1"), "canary": (50, "v2")}
        served = _served_after(pytester, emulator, "canary-3")
        assert served == {"stable": (100, "v2"), "previous": (0, "v1")}
        assert _served_after(pytester, emulator, "rollback") == {"stable": (100, "v1")}
    assert load.failures == []
    assert set(load.versions) == {"v1", "v2"}

    c1 = stage_cases(pytester.path, "canary-1")
    assert c1["deploy"][2]["canary.image"] == "v2"
    assert c1["traffic"][2]["router.canary_percent"] == "10"
    assert c1["verdict"][0] == "passed", c1["verdict"]
    assert int(c1["health@2s"][2]["judge.error_rate.samples"]) >= 10
    c2 = stage_cases(pytester.path, "canary-2")
    assert c2["deploy"][2]["canary.replicas"] == "2"  # min instances of the new revision
    c3 = stage_cases(pytester.path, "canary-3")
    assert c3["promote:main"][2]["main.replicas"] == "3"
    assert c3["promote:main"][2]["main.previous_image"] == "v1"
    assert int(c3["promote:main"][2]["router.requests_checked"]) == 10
    c4 = stage_cases(pytester.path, "rollback")
    assert [c4[n][0] for n in ("rollback:traffic", "rollback:canary", "rollback:main")] == [
        "passed"
    ] * 3
    assert c4["rollback:main"][2]["main.image"] == "v1"
    outcomes = [r["outcome"] for r in ledger_runs(pytester.path)]
    assert outcomes == ["passed"] * 4


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_canary_with_errors_is_rolled_back_through_the_service_traffic(
    pytester: pytest.Pytester, emulator: CloudRunEmulator, xdist: list[str]
) -> None:
    # Insufficient intervals (a loaded machine) do not end the hold before the errors show.
    project(pytester, _toml(emulator.endpoint, hold="10s", insufficient=4))
    service_url = emulator.state(NAME).service.uri
    with load_through(_port(service_url)) as load:
        result = run_stage(pytester, "canary-1", "--image=v2-errors", *xdist)
    out = result.stdout.str()
    assert result.ret == 1, out
    # The canary's own injected 500s reached the load loop at its 10 % share; nothing else
    # failed (no request lost while the traffic moved back).
    assert load.failures_except("HTTP 500 from v2-errors") == []
    assert load.versions.get("v2-errors", 0) > 0

    cases = stage_cases(pytester.path, "canary-1")
    failed = [n for n, c in cases.items() if n.startswith("health@") and c[0] == "failure"]
    assert len(failed) == 1, cases
    props = cases[failed[0]][2]
    assert props["judge.error_rate.verdict"] == "fail", props
    # Measured at each revision's tag URL: canary health probes name the revision, and
    # the comparison has stable's direct requests besides the canary's.
    assert any(k.startswith(f"judge.health_failure_share.{SERVICE}-") for k in props), props
    assert int(props["judge.compare_error_rate.samples"]) > int(props["judge.error_rate.samples"])
    for step in ("rollback:traffic", "rollback:canary", "rollback:main"):
        assert cases[step][0] == "passed", cases[step]
    assert cases["rollback:main"][2]["main.image"] == "v1"
    assert ledger_runs(pytester.path)[0]["outcome"] == "rolled-back"

    # The service: 100 % to the main revision, no canary tag, the canary revision deleted.
    assert _served(emulator) == {"stable": (100, "v1")}
    images = [r.revision.containers[0].image for r in emulator.state(NAME).revisions.values()]
    assert images == ["v1"]
    platform = CloudRunPlatform(platform_config(emulator.endpoint))
    weights = CloudRunRouter(platform, CloudRunRouterConfig(type="cloud-run")).weights()
    assert (weights.stable, weights.canary, weights.canary_members) == (100, 0, ())


BLUEGREEN = bluegreen_stages(1, "4s", "2s")


def test_blue_green_switch_and_switch_back_through_the_service_traffic(
    pytester: pytest.Pytester, emulator: CloudRunEmulator
) -> None:
    """The idle colour is a tagged revision at 0 % (judged through its tag URL), the switch
    one traffic update to 100 %, the switch back the rollback stage; the load through the
    service URL loses no request."""
    project(pytester, _toml(emulator.endpoint) + BLUEGREEN)
    service_url = emulator.state(NAME).service.uri
    with load_through(_port(service_url)) as load:
        served = _served_after(pytester, emulator, "bluegreen-deploy")
        assert served == {"stable": (100, "v1"), "canary": (0, "v2")}
        assert set(load.versions) == {"v1"}  # no production request reached the idle colour
        served = _served_after(pytester, emulator, "bluegreen-switch")
        assert served == {"stable": (0, "v1"), "canary": (100, "v2")}
        assert _served_after(pytester, emulator, "rollback") == {"stable": (100, "v1")}
    assert load.failures == []
    assert set(load.versions) == {"v1", "v2"}
    verified = stage_cases(pytester.path, "bluegreen-switch")["switch:verify"]
    assert verified[0] == "passed", verified
    assert verified[2]["live.image"] == "v2"

"""Blue/green end to end on the local platform: real HAProxy, real replica processes, real
pytest stages, a load loop through the router counting every failed request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import pytest

from pytest_release.canary.bluegreen import check_full_size, require_idle_colour
from pytest_release.canary.platform import PlatformStatus
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.samples import ReplicaStatus
from pytest_release.errors import GateCheckFailed
from tests.canary.canary_support import (
    bootstrap_main,
    canary_project,
    canary_root,
    canary_toml,
    load_through,
    new_port,
    platform_config,
)
from tests.support.spine import XDIST_MODES, ledger_runs, project, run_stage, stage_cases
from tests.support.stages import BLUEGREEN_ROUND_TRIP, bluegreen_stages, stage_release_outcomes

__all__ = ["canary_root"]

# The idle colour's evidence is the sampler's direct requests only (no router traffic
# reaches it): 3 s intervals give enough of them on a loaded machine.
BLUEGREEN_STAGES = bluegreen_stages(1, "6s", "3s", finish=True)

# This test is about the switch, not the judge: on a loaded machine both colours can be
# slow in the same window, which the judge calls the environment, not the canary.
LOADED_MACHINE = {
    "max_p95_latency_ms": 5000,
    "stable_exceeds": "hold",
    "max_insufficient_intervals": 1,
}


def _state(root: Path) -> tuple[PlatformStatus, tuple[int, int]]:
    platform = LocalPlatform(platform_config(), root)
    weights = HAProxyRouter(HAProxyConfig(), platform.state_dir).weights()
    return platform.status(), (weights.stable, weights.canary)


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_deploy_switch_switch_back_then_finish_without_a_failed_request(
    pytester: pytest.Pytester, canary_root: Path, xdist: list[str]
) -> None:
    port = canary_project(pytester, judge=LOADED_MACHINE, extra=BLUEGREEN_STAGES)
    with load_through(port) as load:
        deploy = run_stage(pytester, "bluegreen-deploy", "--image=v2", *xdist)
        assert deploy.ret == 0, deploy.stdout.str()
        # Judged while idle: no production request reached the new colour.
        assert set(load.versions) == {"v1"}, load.versions
        status, split = _state(canary_root)
        assert (status.stable_image, status.canary_image, split) == ("v1", "v2", (100, 0))

        switch = run_stage(pytester, "bluegreen-switch", "--image=v2", *xdist)
        assert switch.ret == 0, switch.stdout.str()
        status, split = _state(canary_root)
        assert split == (0, 100)
        # The old colour stays warm: running and ready as the standby.
        assert status.stable_image == "v1"
        assert status.group("stable")
        assert not status.not_ready("stable")
        deadline = time.monotonic() + 60
        while "v2" not in load.versions and time.monotonic() < deadline:
            time.sleep(0.05)  # the load loop sends a request every 10 ms
        assert "v2" in load.versions, load.versions
        served_before_switch_back = dict(load.versions)

        back = run_stage(pytester, "rollback", "--image=v2", *xdist)
        assert back.ret == 0, back.stdout.str()
        status, split = _state(canary_root)
        assert (status.stable_image, status.group("canary"), split) == ("v1", (), (100, 0))

        # The same release again, this time kept: the new colour becomes the main.
        again = run_stage(pytester, "bluegreen-deploy", "--image=v2", *xdist, release="r2")
        assert again.ret == 0, again.stdout.str()
        switched = run_stage(pytester, "bluegreen-switch", "--image=v2", *xdist, release="r2")
        assert switched.ret == 0, switched.stdout.str()
        finish = run_stage(pytester, "bluegreen-finish", "--image=v2", *xdist, release="r2")
        assert finish.ret == 0, finish.stdout.str()
    assert load.failures == [], load.failures[:5]
    assert served_before_switch_back.get("v1", 0) > 0
    status, split = _state(canary_root)
    assert (status.stable_image, status.group("canary"), split) == ("v2", (), (100, 0))
    assert status.previous_image == "v1"

    deploy_cases = stage_cases(canary_root, "bluegreen-deploy")
    assert deploy_cases["idle"][0] == "passed"
    assert deploy_cases["idle"][2]["router.canary_percent"] == "0"
    assert deploy_cases["verdict"][0] == "passed"
    switch_cases = stage_cases(canary_root, "bluegreen-switch")
    assert switch_cases["switch"][2]["standby.image"] == "v1"
    assert switch_cases["switch:verify"][2]["live.image"] == "v2"
    assert int(switch_cases["switch:verify"][2]["router.requests_checked"]) > 0
    assert stage_release_outcomes(ledger_runs(canary_root)) == BLUEGREEN_ROUND_TRIP


def test_bad_idle_colour_is_removed_before_it_takes_any_traffic(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = canary_project(pytester, extra=BLUEGREEN_STAGES)
    with load_through(port) as load:
        result = run_stage(pytester, "bluegreen-deploy", "--image=v2-errors")
        assert result.ret == 1, result.stdout.str()
        # A switch for the failed release is refused by the ledger...
        refused = run_stage(pytester, "bluegreen-switch", "--image=v2-errors")
        assert refused.ret != 0
        assert "requires 'bluegreen-deploy' (last run rolled-back)" in refused.stderr.str()
    assert load.failures == []
    assert set(load.versions) == {"v1"}
    status, split = _state(canary_root)
    assert (status.stable_image, status.group("canary"), split) == ("v1", (), (100, 0))
    cases = stage_cases(canary_root, "bluegreen-deploy")
    assert cases["verdict"][0] == "failure" or any(
        outcome == "failure" for name, (outcome, _, _) in cases.items() if name.startswith("health")
    )
    assert cases["rollback:canary"][0] == "passed"
    assert ledger_runs(canary_root)[-1]["outcome"] == "rolled-back"


def test_switch_without_an_idle_colour_changes_nothing(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    canary_project(pytester, extra=BLUEGREEN_STAGES)
    result = run_stage(pytester, "bluegreen-switch", "--image=v2", "--override-requires=test")
    assert result.ret == 1
    out = result.stdout.str()
    assert "nothing to switch to: no idle colour runs" in out
    assert "run the blue/green deploy stage for 'v2' first" in out
    status, split = _state(canary_root)
    assert (status.stable_image, status.group("canary"), split) == ("v1", (), (100, 0))
    assert stage_cases(canary_root, "bluegreen-switch")["rollback:traffic"][0] == "skipped"


def test_deploy_judged_on_router_evidence_only_is_a_usage_error(pytester: pytest.Pytester) -> None:
    toml = canary_toml(
        router_port=new_port(), judge={"evidence": ["router"]}, extra=BLUEGREEN_STAGES
    )
    project(pytester, toml)
    result = run_stage(pytester, "bluegreen-deploy", "--image=v2")
    assert result.ret == 4
    assert "judges the idle colour of a blue/green deploy" in result.stderr.str()
    assert "include 'sampler' in judge.evidence" in result.stderr.str()


def test_switch_stage_that_holds_is_a_usage_error(pytester: pytest.Pytester) -> None:
    extra = BLUEGREEN_STAGES.replace(
        'action = "bluegreen-switch", replicas = 1, hold = "0s"',
        'action = "bluegreen-switch", replicas = 1, hold = "30s"',
    )
    project(pytester, canary_toml(router_port=new_port(), extra=extra))
    result = run_stage(pytester, "bluegreen-switch", "--image=v2", "--override-requires=test")
    assert result.ret == 4
    assert "stages.bluegreen-switch.rollout.hold = 30s" in result.stderr.str()
    assert "set hold = 0" in result.stderr.str()


def _replica(name: str, group: Literal["stable", "canary"], ready: bool = True) -> ReplicaStatus:
    return ReplicaStatus(
        timestamp=0.0,
        name=name,
        version=group,
        image="v2" if group == "canary" else "v1",
        running=ready,
        ready=ready,
        restarts=0,
        endpoint=f"127.0.0.1:{20000 + len(name)}",
    )


def _status(*replicas: ReplicaStatus) -> PlatformStatus:
    return PlatformStatus(
        timestamp=0.0, replicas=replicas, stable_image="v1", canary_image="v2", previous_image=None
    )


def test_idle_colour_must_match_the_live_colour_in_size_image_and_readiness() -> None:
    live = [_replica("main-0", "stable"), _replica("main-1", "stable")]
    small = _status(*live, _replica("canary-0", "canary"))
    with pytest.raises(
        GateCheckFailed, match=r"idle colour runs 1 replica\(s\), the live colour 2"
    ):
        check_full_size(small, "bg")
    full = _status(*live, _replica("canary-0", "canary"), _replica("canary-1", "canary", False))
    with pytest.raises(GateCheckFailed, match="not the release image 'v3'"):
        require_idle_colour(full, "v3", "bg")
    with pytest.raises(GateCheckFailed, match="idle colour is not ready: canary-1"):
        require_idle_colour(full, "v2", "bg")


def test_the_bluegreen_profile_collects_its_steps_over_the_release_pipeline(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    expected = {
        "bluegreen-deploy": ["deploy", "idle", "health@30s", "health@1m", "health@90s"],
        "bluegreen-switch": ["switch", "switch:verify"],
        "bluegreen-finish": ["promote:deploy", "promote:traffic", "promote:main"],
    }
    for stage, first_steps in expected.items():
        done = subprocess.run(
            [
                sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                "--release-config=suites/release.toml", "--release-config=suites/bluegreen.toml",
                f"--stage={stage}", "--image=127.0.0.1:5000/shop:bg", "--override-requires=collect",
                f"--ledger={tmp_path / 'ledger.json'}", f"--reports-dir={tmp_path / 'reports'}",
            ],
            cwd=root, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        items = [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]
        assert items[: len(first_steps)] == first_steps, items
        assert items[-3:] == ["rollback:traffic", "rollback:canary", "rollback:main"], items
        if stage == "bluegreen-deploy":
            assert sum(1 for i in items if i.startswith("health@")) == 10  # 5 min / 30 s
            assert items[items.index("health@5m") + 1] == "verdict"


def test_seed_002_profile_walks_5_25_50_percent_then_promotes(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    """suites/seed-002.toml as shipped, layered over a local pipeline; a third layer only
    shortens the holds and relaxes latency (this test is about the steps, and a loaded CI
    machine answers slower than 200 ms)."""
    port = new_port()
    project(pytester)
    root = Path(__file__).resolve().parents[2]
    (pytester.path / "base.toml").write_text(canary_toml(router_port=port))
    (pytester.path / "seed-002.toml").write_text((root / "suites" / "seed-002.toml").read_text())
    fast = "\n".join(
        f'[stages.canary-{n}.rollout]\nhold = "6s"\ninterval = "3s"' for n in (1, 2, 3)
    )
    fast += "\n[gates.canary.judge]\nmax_p95_latency_ms = 5000\nstable_exceeds = 'hold'\n"
    fast += "max_insufficient_intervals = 1\n"
    (pytester.path / "fast.toml").write_text(fast)
    layers = [f"--release-config={name}" for name in ("base.toml", "seed-002.toml", "fast.toml")]
    bootstrap_main(canary_root, port)
    with load_through(port) as load:
        for stage in ("canary-1", "canary-2", "canary-3", "canary-4"):
            result = run_stage(pytester, stage, "--image=v2", *layers)
            assert result.ret == 0, result.stdout.str()
    assert load.failures == []
    weights = [stage_cases(canary_root, f"canary-{n}")["traffic"][2] for n in (1, 2, 3)]
    assert [w["router.canary_percent"] for w in weights] == ["5", "25", "50"]
    promoted = stage_cases(canary_root, "canary-4")["promote:main"]
    assert promoted[0] == "passed"
    assert promoted[2]["main.replicas"] == "3"
    status, split = _state(canary_root)
    assert (status.stable_image, split) == ("v2", (100, 0))


def test_seed_002_profile_sets_the_seed_thresholds_and_rollback_triggers() -> None:
    import tomllib

    from pytest_release.config.release import load_release_config, merge_layers
    from pytest_release.gates import builtin_gate_kinds

    root = Path(__file__).resolve().parents[2]
    layers = [
        tomllib.loads((root / "suites" / name).read_text())
        for name in ("release.toml", "seed-002.toml")
    ]
    config = load_release_config(merge_layers(layers), "seed-002", builtin_gate_kinds())
    rollouts = {n: config.stages[f"canary-{n}"].rollout for n in (1, 2, 3, 4)}
    assert [(r.action, r.weight) for r in rollouts.values() if r] == [
        ("canary", 5),
        ("canary", 25),
        ("canary", 50),
        ("promote", 100),
    ]
    assert config.stages["smoke"].requires == ("canary-4",)
    judge = config.gates["canary"].judge  # type: ignore[attr-defined]
    assert (judge.max_error_rate, judge.max_p95_latency_ms) == (0.01, 200)
    assert (judge.sustained_error_rate, judge.sustained_error_window) == (0.05, 120.0)
    assert (judge.slow_response_ms, judge.slow_response_window) == (5000, 60.0)
    assert (judge.max_consecutive_health_failures, judge.no_success_window) == (3, 30.0)

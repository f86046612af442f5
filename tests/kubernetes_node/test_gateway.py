"""Traefik's Gateway API provider on the real node: an HTTPRoute's backendRefs weights split
the traffic like a TraefikService's."""

from __future__ import annotations

import json

from tests.kubernetes_node.apps import apply, deployment, rollout, send, service, split, wait_routed
from tests.kubernetes_node.cluster import TRAEFIK_WEB_PORT, NodeCluster, wait_for


def test_gateway_api_httproute_weights(
    node_cluster: NodeCluster, node_image: str, namespace: str
) -> None:
    host = f"{namespace}.gateway.test"
    gateway_class = f"traefik-{namespace}"
    node_cluster.kubectl(
        "apply", "-f", "-",
        input=json.dumps({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": gateway_class},
            "spec": {"controllerName": "traefik.io/gateway-controller"},
        }),
    )  # fmt: skip
    try:
        apply(
            node_cluster,
            namespace,
            deployment("stable", node_image, "stable"),
            deployment("canary", node_image, "canary"),
            service("stable"),
            service("canary"),
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "gw"},
                "spec": {
                    "gatewayClassName": gateway_class,
                    "listeners": [
                        # Traefik binds a listener to the entrypoint with the same port.
                        {
                            "name": "web",
                            "port": TRAEFIK_WEB_PORT,
                            "protocol": "HTTP",
                            "hostname": host,
                            "allowedRoutes": {"namespaces": {"from": "Same"}},
                        }
                    ],
                },
            },
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

        def accepted() -> bool:
            gateway = node_cluster.kubectl_json("get", "gateway", "gw", "-n", namespace)
            status = gateway.get("status")
            conditions = status.get("conditions", []) if isinstance(status, dict) else []
            return any(
                c.get("type") == "Programmed" and c.get("status") == "True" for c in conditions
            )

        wait_for("the Gateway to be Programmed by Traefik", accepted, timeout=120)
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
        node_cluster.kubectl("delete", "gatewayclass", gateway_class, "--wait=false", check=False)

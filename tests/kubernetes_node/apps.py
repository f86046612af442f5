"""Manifests and traffic helpers for the tests of the real node."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.kubernetes_node.cluster import TRAEFIK_WEB_PORT, NodeCluster, wait_for

PORT = 8080

# A tiny HTTP app run by python3 from local/python:bookworm: GET answers its version and pod
# name; SIGTERM ends it at once (Python as PID 1 would otherwise ignore it).
SERVER = """\
import http.server, json, os, signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": os.environ["VERSION"], "pod": socket.gethostname(),
                           "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
"""

# Sends N GETs from inside the netns, prints {"versions": {...}, "errors": n}.
CLIENT = """\
import json, sys, urllib.request
url, count, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
versions, errors = {}, []
for _ in range(count):
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            version = json.loads(response.read())["version"]
            versions[version] = versions.get(version, 0) + 1
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({"versions": versions, "errors": errors}))
"""


def deployment(name: str, image: str, version: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["python3", "-c", SERVER],
                            "env": [{"name": "VERSION", "value": version}],
                            "ports": [{"containerPort": PORT, "name": "http"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/health", "port": PORT},
                                "periodSeconds": 1,
                                "failureThreshold": 2,
                            },
                        }
                    ],
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": PORT}]},
    }


def stable_and_canary(image: str) -> tuple[dict[str, Any], ...]:
    """Deployments ``stable`` and ``canary`` of ``image`` (one pod each) and their Services."""
    return (
        deployment("stable", image, "stable"),
        deployment("canary", image, "canary"),
        service("stable"),
        service("canary"),
    )


def gateway_class(name: str) -> dict[str, Any]:
    """A GatewayClass of Traefik's Gateway API provider."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": "traefik.io/gateway-controller"},
    }


def gateway(class_name: str, host: str | None = None) -> dict[str, Any]:
    """The Gateway ``gw`` of the class ``class_name``: one HTTP listener ``web`` (for
    ``host`` only, when given) that takes the routes of its own namespace."""
    # Traefik binds a listener to the entrypoint with the same port.
    listener: dict[str, Any] = {"name": "web", "port": TRAEFIK_WEB_PORT, "protocol": "HTTP"}
    if host is not None:
        listener["hostname"] = host
    listener["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {"gatewayClassName": class_name, "listeners": [listener]},
    }


def gateway_programmed(cluster: NodeCluster, namespace: str) -> bool:
    """Whether Traefik has programmed the Gateway ``gw`` of ``namespace``."""
    found = cluster.kubectl_json("get", "gateway", "gw", "-n", namespace)
    status = found.get("status")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    return any(c.get("type") == "Programmed" and c.get("status") == "True" for c in conditions)


def apply(cluster: NodeCluster, namespace: str, *objects: dict[str, Any]) -> None:
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def rollout(cluster: NodeCluster, namespace: str, name: str, timeout: int = 240) -> None:
    cluster.kubectl(
        "rollout", "status", "-n", namespace, f"deployment/{name}", f"--timeout={timeout}s",
        timeout=timeout + 30,
    )  # fmt: skip


def pods(cluster: NodeCluster, namespace: str, app: str) -> list[dict[str, Any]]:
    items = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    assert isinstance(items, list)
    return items


def send(cluster: NodeCluster, url: str, count: int, host: str = "") -> dict[str, Any]:
    """``count`` GETs of ``url`` from inside the cluster's netns."""
    result = cluster.run_in_netns(
        ["python3", "-c", CLIENT, url, str(count), host], timeout=60 + count
    )
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict)
    return parsed


def wait_routed(cluster: NodeCluster, url: str, host: str, versions: set[str]) -> None:
    """Wait until Traefik answers ``host`` with every one of ``versions``."""

    def routed() -> bool:
        seen = send(cluster, url, 20, host)
        return set(seen["versions"]) == versions and not seen["errors"]

    wait_for(f"Traefik to route {host} to {sorted(versions)}", routed, timeout=120)


def split(result: dict[str, Any]) -> Counter[str]:
    return Counter({str(k): int(v) for k, v in result["versions"].items()})

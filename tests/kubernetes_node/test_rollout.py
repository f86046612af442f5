"""The seed scenario on the real node: the Kubernetes platform and the Traefik router roll
out the fault service with the judge's HTTP checks on.

The stages are real pytest sessions run inside the cluster's network namespace (where pod
IPs and Traefik's entrypoint are reachable), with ``platform.sample_pods = true`` and
``router.url`` = Traefik's ``web`` entrypoint: the hold sends requests through Traefik and
directly to every pod, probes ``/health`` on every pod and reads restarts from the pods'
real status.  A good release goes 10 % -> 50 % -> main at 100 % with 3 pods; a bad one
(half of its requests answer 500) and a crashing one are rolled back by the canary gate
itself; a load loop through Traefik loses no request meanwhile.  The ledger and the
rollout lock are the ConfigMap and the Lease of the same cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_release.canary.platforms.kubernetes.client import LEASES, KubeApi
from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
from tests.kubernetes.k8s_support import (
    image_and_replicas,
    ledger_runs,
    pods,
    service_exists,
    weights_of,
)
from tests.kubernetes_node.apps import apply
from tests.kubernetes_node.cluster import NodeCluster, wait_for
from tests.spine_support import junit, nest_tables

FAULT_SERVICE = Path(__file__).parents[1] / "services" / "fault_service.py"
REPO = "localhost/pytest-release/fault"
# tag -> environment baked into the image (the platform sets only the image).
RELEASES = {
    "1": {"VERSION": "1"},
    "2": {"VERSION": "2"},
    "3-bad": {"VERSION": "3-bad", "FAULT_ERROR_RATE": "0.5"},
    "4-crash": {"VERSION": "4-crash", "FAULT_CRASH_AFTER": "15"},
}
DOCKERFILE = """\
FROM {base}
COPY fault_service.py /app/fault_service.py
ENV HOST=0.0.0.0 PORT=8080 {env}
CMD ["python3", "/app/fault_service.py"]
"""


@pytest.fixture(scope="module")
def fault_images(
    node_cluster: NodeCluster,
    base_image: str,
    docker_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The fault service built on the base image, one tag per release, imported into the
    node in one archive (the base layers once)."""
    refs = {}
    for tag, env in RELEASES.items():
        context = tmp_path_factory.mktemp(f"fault-{tag}")
        knobs = " ".join(f"{k}={v}" for k, v in env.items())
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base_image, env=knobs))
        (context / "fault_service.py").write_bytes(FAULT_SERVICE.read_bytes())
        ref = f"{REPO}:{tag}"
        docker_client.images.build(path=str(context), tag=ref, rm=True, network_mode="host")
        refs[tag] = ref
    archive = tmp_path_factory.mktemp("fault-archive") / "fault.tar"
    subprocess.run(["docker", "save", "-o", str(archive), *refs.values()], check=True, timeout=600)
    node_cluster.ctr("images", "import", "--no-unpack=false", str(archive))
    return refs


# Continuous GETs through Traefik from inside the netns until the stop file exists; counts
# start at the first answer (the TraefikService is created by the first stage).  500 is the
# fault service's own error (the bad release); anything else that is not 200 (404: no
# route, 502/503: no backend, transport errors) is a request the rollout lost.
LOAD = """\
import json, os, sys, time, urllib.error, urllib.request
url, stop = sys.argv[1], sys.argv[2]
counts, lost, app_errors, started = {}, [], 0, False
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            version = response.headers.get("X-Version", "?")
            counts[version] = counts.get(version, 0) + 1
            started = True
    except urllib.error.HTTPError as exc:
        if exc.code == 500 and started:
            app_errors += 1
        elif started:
            lost.append(f"{time.time():.3f} HTTP {exc.code}")
    except Exception as exc:
        if started:
            lost.append(f"{time.time():.3f} {exc!r}")
    time.sleep(0.02)
print(json.dumps({"versions": counts, "lost": lost, "app_errors": app_errors}))
"""


class Load:
    """The load loop in the background, inside the netns."""

    def __init__(self, cluster: NodeCluster, root: Path) -> None:
        self.stop_file = root / "load.stop"
        command = cluster.netns_command(
            [sys.executable, "-c", LOAD, cluster.traefik_url + "/", str(self.stop_file)]
        )
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def close(self) -> None:
        if self.process.poll() is None:
            self.result()

    def result(self) -> dict[str, Any]:
        self.stop_file.touch()
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()  # our own child, by PID
            out, _ = self.process.communicate()
        self.stop_file.unlink(missing_ok=True)
        parsed = json.loads(out)
        assert isinstance(parsed, dict)
        return parsed


def stage_toml(namespace: str, kubeconfig: Path, router_url: str) -> str:
    rollout = 'action = "canary", hold = "6s", interval = "2s"'
    return f"""
[ledger]
backend = "kubernetes"
namespace = "{namespace}"
application = "shop"
kubeconfig = "{kubeconfig}"
lease_duration = 30

[stages.canary-1]
requires = []
rollout = {{ {rollout}, replicas = 1, weight = 10 }}
[stages.canary-2]
rollout = {{ {rollout}, replicas = 2, weight = 50 }}
[stages.canary-3]
rollout = {{ action = "promote", replicas = 3, weight = 100, hold = "0s" }}

[gates.canary]
paths = []
verify_requests = 20

[gates.canary.platform]
type = "kubernetes"
namespace = "{namespace}"
app = "shop"
kubeconfig = "{kubeconfig}"
stable_image = "{REPO}:1"
stable_replicas = 1
termination_grace_period = 2
sample_pods = true
rollout_timeout = "240s"

[gates.canary.router]
type = "traefik"
url = "{router_url}"

[gates.canary.sampler]
rate = 10
direct_rate = 20
concurrency = 32
health_interval = "0.5s"
status_interval = "0.5s"
timeout = 5

[gates.canary.judge]
http_checks = true
max_restarts = 0
min_requests = 10
max_p95_latency_ms = 3000
comparison = {{ alpha = 0.001, min_samples = 10 }}
"""


def ingress_route(namespace: str) -> dict[str, Any]:
    """Traefik's ``web`` entrypoint -> the TraefikService the router manages (named after
    the main Deployment).  Other tests route by Host, which Traefik ranks first."""
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "match": "PathPrefix(`/`)",
                    "kind": "Rule",
                    "services": [{"name": "shop", "kind": "TraefikService"}],
                }
            ],
        },
    }


class Project:
    """A project directory whose stages run inside the cluster's netns."""

    def __init__(self, cluster: NodeCluster, root: Path, namespace: str) -> None:
        self.cluster = cluster
        self.root = root
        self.namespace = namespace
        self.durations: dict[str, float] = {}
        toml = stage_toml(namespace, cluster.kubeconfig, cluster.traefik_url)
        (root / "pyproject.toml").write_text(
            "[tool.pytest-release]\n" + nest_tables(toml), encoding="utf-8"
        )

    def stage(self, stage: str, image: str, release: str) -> tuple[int, str]:
        command = [
            "env", "-C", str(self.root), sys.executable, "-m", "pytest",
            f"--stage={stage}", f"--release-id={release}", f"--release-image={image}",
            "-p", "no:cacheprovider", "-rA",
        ]  # fmt: skip
        env = {**_host_env(), **self.cluster.environment()}
        started = time.monotonic()
        result = self.cluster.run_in_netns(command, timeout=900, check=False, env=env)
        self.durations[f"{stage} {image}"] = time.monotonic() - started
        out = result.stdout + result.stderr
        (self.root / f"{stage}-{release}.log").write_text(out, encoding="utf-8")
        return result.returncode, out


def _host_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


@pytest.fixture
def api(node_cluster: NodeCluster) -> KubeApi:
    """The API server through the host's loopback forward (127.0.0.1 only)."""
    return KubeApi(ClusterAccess(kubeconfig=str(node_cluster.host_kubeconfig)))


@pytest.fixture
def project(node_cluster: NodeCluster, namespace: str, tmp_path: Path) -> Iterator[Project]:
    apply(node_cluster, namespace, ingress_route(namespace))
    try:
        yield Project(node_cluster, tmp_path, namespace)
    finally:
        node_cluster.kubectl(
            "delete", "ingressroute", "shop", "-n", namespace, "--wait=false", check=False
        )


def _cases(root: Path, stage: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """JUnit test case -> (outcome, message, properties)."""
    cases = {}
    for case in junit(root / "reports" / f"{stage}.xml").iter("testcase"):
        outcome, message, properties = "passed", "", {}
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "") + (child.text or "")
            for prop in child.iter("property"):
                properties[prop.get("name", "")] = prop.get("value", "")
        cases[case.get("name", "")] = (outcome, message, properties)
    return cases


def _judged_requests(out: str) -> list[tuple[int, int]]:
    """(canary, stable) requests of each progress line of a hold."""
    found = re.findall(r"canary: (\d+) req, .*?\| stable: (\d+) req", out)
    return [(int(c), int(s)) for c, s in found]


@pytest.fixture
def load(node_cluster: NodeCluster, tmp_path: Path) -> Iterator[Callable[[], Load]]:
    """Start load loops through Traefik; the ones still running are stopped afterwards."""
    started: list[Load] = []

    def start() -> Load:
        started.append(Load(node_cluster, tmp_path))
        return started[-1]

    yield start
    for running in started:
        running.close()


def _images(api: KubeApi, namespace: str, version: str) -> list[str]:
    return [p["spec"]["containers"][0]["image"] for p in pods(api, namespace, version)]


def test_good_release_promoted_bad_release_rolled_back(
    node_cluster: NodeCluster,
    fault_images: dict[str, str],
    project: Project,
    api: KubeApi,
    namespace: str,
    load: Callable[[], Load],
) -> None:
    good, bad = fault_images["2"], fault_images["3-bad"]
    during_good = load()  # counts from the first answer: through every weight change

    rc, out = project.stage("canary-1", good, "r2")
    assert rc == 0, out
    assert image_and_replicas(api, namespace, "shop") == (fault_images["1"], 1)
    assert image_and_replicas(api, namespace, "shop-canary") == (good, 1)
    assert weights_of(api, namespace) == {"shop": 90, "shop-canary": 10}
    # The HTTP checks judged real requests to the pods (direct) in every interval.
    judged = _judged_requests(out)
    assert judged, out
    assert all(c > 0 and s > 0 for c, s in judged), out

    rc, out = project.stage("canary-2", good, "r2")
    assert rc == 0, out
    assert image_and_replicas(api, namespace, "shop-canary") == (good, 2)
    assert len(pods(api, namespace, "canary")) == 2
    assert weights_of(api, namespace) == {"shop": 50, "shop-canary": 50}

    rc, out = project.stage("canary-3", good, "r2")
    assert rc == 0, out
    assert image_and_replicas(api, namespace, "shop") == (good, 3)
    outcome, _, properties = _cases(project.root, "canary-3")["promote:main"]
    assert outcome == "passed"
    assert properties["router.requests_checked"] == "20"  # through Traefik

    def settled() -> bool:
        return _images(api, namespace, "stable") == [good] * 3

    wait_for("the main Deployment's old pods to terminate", settled, timeout=120)
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    assert pods(api, namespace, "canary") == []
    assert weights_of(api, namespace) == {"shop": 100}
    traffic = during_good.result()
    assert traffic["lost"] == [], traffic
    assert traffic["app_errors"] == 0, traffic
    assert traffic["versions"].get("1", 0) > 0, traffic
    assert traffic["versions"].get("2", 0) > 0, traffic

    # A bad release: half of its requests answer 500.  The gate rolls it back itself.
    during_bad = load()
    rc, out = project.stage("canary-1", bad, "r3")
    assert rc == 1, out
    assert "release stage canary-1: rolled-back" in out, out
    failed = [
        message
        for name, (outcome, message, _) in _cases(project.root, "canary-1").items()
        if name.startswith("health@") and outcome == "failure"
    ]
    assert failed, out
    assert "canary error rate" in failed[0], out
    assert weights_of(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    assert image_and_replicas(api, namespace, "shop") == (good, 3)
    traffic_bad = during_bad.result()
    # 500s of the bad canary are its own errors; no request is lost by the rollback.
    assert traffic_bad["lost"] == [], traffic_bad
    assert traffic_bad["versions"].get("2", 0) > 0, traffic_bad

    # A crashing release: the container exits after 15 requests, the kubelet restarts it.
    rc, out = project.stage("canary-1", fault_images["4-crash"], "r4")
    assert rc == 1, out
    assert "release stage canary-1: rolled-back" in out, out
    failed = [
        message
        for name, (outcome, message, _) in _cases(project.root, "canary-1").items()
        if name.startswith("health@") and outcome == "failure"
    ]
    # Its requests are refused while the kubelet restarts it, its /health probes fail.
    assert failed, out
    assert re.search(r"/health failed: shop-canary-\S+ [1-9]\d*/\d+", out), out
    assert weights_of(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert image_and_replicas(api, namespace, "shop") == (good, 3)

    runs = ledger_runs(api, namespace)  # the ConfigMap ledger of this cluster
    assert [(r["stage"], r["outcome"]) for r in runs] == [
        ("canary-1", "passed"),
        ("canary-2", "passed"),
        ("canary-3", "passed"),
        ("canary-1", "rolled-back"),
        ("canary-1", "rolled-back"),
    ], json.dumps(runs, indent=1)[:3000]
    lease = api.get(LEASES, namespace, "pytest-release-rollout-shop")
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")  # released after every stage
    print("stage durations:", {k: round(v, 1) for k, v in project.durations.items()})
    print("through Traefik:", traffic, {k: v for k, v in traffic_bad.items() if k != "lost"})

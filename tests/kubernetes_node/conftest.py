"""Fixtures for the real one-node Kubernetes cluster (see cluster.py).

``node_cluster`` (session scope) is one cluster per test process: each xdist worker that
runs a test of this folder starts its own, in its own network namespace, on first use, and
tears it down at the end of the session, also when a test or the start-up fails.  A file
lock serialises the start-ups (two clusters starting together on two cores would each take
twice as long); the clusters themselves share nothing (own netns, directories, containerd,
cgroup root), so they run side by side.  Clusters left by a killed run (owner process gone)
are torn down before a new one starts.

Without root, the system packages or the binaries the tests are skipped with the reason
(``-rs`` prints it); under CI (``CI`` set) they fail instead, since CI installs and builds
everything first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from pytest_release.canary.platforms.kubernetes.client import KubeApi
from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
from tests.kubernetes_node.apps import apply
from tests.kubernetes_node.cluster import (
    CNI_BIN_DIR,
    TESTBED_SCRIPT,
    TRAEFIK_SCRIPT,
    WORK_ROOT,
    ClusterError,
    NodeCluster,
    stale_clusters,
    wait_for,
)
from tests.kubernetes_node.stages import (
    Load,
    NodeBed,
    Project,
    build_fault_images,
    ingress_route,
    stage_toml,
)
from tests.support.builds import built

REQUIRED_COMMANDS = ("ip", "nsenter", "containerd", "containerd-shim-runc-v2", "runc", "ctr",
                     "openssl", "gcc", "iptables", "docker", "python3")  # fmt: skip


def unavailable(reason: str) -> None:
    """Skip loudly with the reason, or fail under CI (which installs and builds everything)."""
    if os.environ.get("CI"):
        pytest.fail(f"the real Kubernetes node cannot run: {reason}", pytrace=False)
    pytest.skip(f"the real Kubernetes node cannot run: {reason}")


def _build(script: Path) -> Path:
    return built(
        script,
        "the real Kubernetes node's binaries",
        "Install Go >= 1.26, reach the Go module proxy, then run that script",
    )


@pytest.fixture(scope="session")
def node_binaries() -> tuple[Path, Path]:
    """(Kubernetes binary dir, Traefik dir), built once and cached by version."""
    if os.geteuid() != 0:
        unavailable("it needs root (network namespaces, mounts, cgroups)")
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append(f"{CNI_BIN_DIR}/bridge (containernetworking-plugins)")
    if missing:
        unavailable(f"missing {', '.join(missing)}: run scripts/install-system-deps.sh")
    probe = f"pytest-release-probe-{uuid.uuid4().hex[:8]}"
    added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if added.returncode != 0:
        unavailable(f"`ip netns add` fails here: {added.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", probe], check=False)
    bin_dir = _build(TESTBED_SCRIPT)  # also builds Traefik (scripts/build-traefik.sh)
    traefik_dir = _build(TRAEFIK_SCRIPT)
    for path in (bin_dir / "kubelet", traefik_dir / "traefik"):
        if not path.exists():
            unavailable(f"{path} is missing after the build")
    return bin_dir, traefik_dir


@pytest.fixture(scope="session")
def node_cluster(node_binaries: tuple[Path, Path]) -> Iterator[NodeCluster]:
    """A started one-node cluster with Traefik, torn down at the end of the session."""
    bin_dir, traefik_dir = node_binaries
    with FileLock(str(WORK_ROOT / "pytest-release-node.lock")):
        for stale in stale_clusters():
            stale.stop()
        cluster = NodeCluster.create(bin_dir, traefik_dir)
        try:
            cluster.start()
        except (ClusterError, subprocess.SubprocessError, OSError) as exc:
            problems = cluster.stop()
            pytest.fail(f"the cluster did not start: {exc}\nteardown: {problems}", pytrace=False)
    try:
        yield cluster
    finally:
        problems = cluster.stop()
        assert not problems, f"teardown of {cluster.name}: {problems}"
        # The graceful path (pods deleted through the API first) leaves nothing either.  (The
        # shared host paths are not checked here: another worker's cluster may be stopping
        # at this very moment and remove them a moment later.)
        left = {k: v for k, v in cluster.leftovers().items() if v and k != "shared"}
        assert not left, f"teardown of {cluster.name} left {left}"


@pytest.fixture(scope="session")
def node_image(node_cluster: NodeCluster, base_image: str) -> str:
    """``local/python:bookworm`` imported into the cluster (pods run ``python3 -c ...``)."""
    return node_cluster.import_image(base_image)


@pytest.fixture
def namespace(node_cluster: NodeCluster) -> Iterator[str]:
    """A fresh Kubernetes namespace for one test (deleted afterwards, without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    node_cluster.kubectl("create", "namespace", name)
    yield name
    # The routes first, and until Traefik has dropped them: tests route the same entrypoint
    # (``PathPrefix(`/`)``), and a namespace takes a while to go.
    node_cluster.kubectl(
        "delete", "ingressroutes.traefik.io,httproutes.gateway.networking.k8s.io,"
        "gateways.gateway.networking.k8s.io", "--all", "-n", name, check=False,
    )  # fmt: skip
    wait_for(
        f"Traefik to drop the routes of namespace {name}",
        lambda: name not in _traefik_routers(node_cluster),
        timeout=60,
    )
    node_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _traefik_routers(cluster: NodeCluster) -> str:
    """Traefik's HTTP routers as its API lists them (their names carry the namespace)."""
    url = f"{cluster.host_traefik_api_url}/api/http/routers?per_page=1000"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture(scope="session")
def fault_images(
    node_cluster: NodeCluster,
    base_image: str,
    docker_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The fault service's release images (stages.RELEASES), imported into the node."""
    workdir = tmp_path_factory.mktemp("fault-images")
    return build_fault_images(node_cluster, base_image, docker_client, workdir)


@pytest.fixture
def api(node_cluster: NodeCluster) -> Iterator[KubeApi]:
    """The API server through the host's loopback forward (127.0.0.1 only)."""
    client = KubeApi(ClusterAccess(kubeconfig=str(node_cluster.host_kubeconfig)))
    yield client
    client.close()


@pytest.fixture
def project(node_cluster: NodeCluster, namespace: str, tmp_path: Path) -> Iterator[Project]:
    """The seed scenario's project (stages.stage_toml), routed by an IngressRoute."""
    apply(node_cluster, namespace, ingress_route(namespace))
    toml = stage_toml(namespace, node_cluster.kubeconfig, node_cluster.traefik_url)
    try:
        yield Project(node_cluster, tmp_path, namespace, toml)
    finally:
        node_cluster.kubectl(
            "delete", "ingressroute", "shop", "-n", namespace, "--wait=false", check=False
        )


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


@pytest.fixture
def bed(
    node_cluster: NodeCluster,
    fault_images: dict[str, str],
    namespace: str,
    api: KubeApi,
    load: Callable[[], Load],
) -> NodeBed:
    """The fixtures a release scenario uses together, as one (a test that also takes
    ``project`` names it first: the project and its route are set up before the load
    starts and torn down after it stops)."""
    return NodeBed(node_cluster, fault_images, api, namespace, load)

"""A real Kubernetes control plane for the tests: kube-apiserver, kube-controller-manager,
kube-scheduler and etcd built from Go modules (scripts/build-k8s-testbed.sh), run by
``kwokctl --runtime binary`` with kwok's fake nodes (pods are scheduled and become
Running and Ready, but no container runs and pod IPs carry no traffic).

One cluster per test process (per xdist worker), started on first use and deleted at the
end of the session, also when a test or the start-up fails.  Each test works in its own
namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from pytest_release.canary.platforms.kubernetes.client import (
    CRDS,
    NAMESPACES,
    Kind,
    KubeApi,
    KubeApiError,
)
from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
from tests.support.builds import built

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-k8s-testbed.sh"
CRD_FILES = sorted((REPO / "deploy" / "kubernetes" / "crds").glob("*.yaml"))
NODES = 2


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@dataclass
class KwokCluster:
    name: str
    workdir: Path
    bin_dir: Path
    kubeconfig: Path
    log: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KWOK_WORKDIR": str(self.workdir),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def kwokctl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / "kwokctl"), "--name", self.name, *args]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        self.log.append(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [
            str(self.bin_dir / "kubectl"),
            "--kubeconfig",
            str(kubeconfig or self.kubeconfig),
            *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def api(self, kubeconfig: Path | None = None) -> KubeApi:
        return KubeApi(ClusterAccess(kubeconfig=str(kubeconfig or self.kubeconfig)), timeout=10)

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    def apiserver_pid(self) -> int:
        return int((self.cluster_dir / "pids" / "kube-apiserver.pid").read_text().strip())

    def stop_apiserver(self) -> None:
        """Kill the API server process (started by kwokctl for this cluster) and wait."""
        pid = self.apiserver_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise RuntimeError(f"kube-apiserver (pid {pid}) did not stop")

    def start_again(self) -> None:
        """Start the components that are not running (the stopped API server)."""
        self.kwokctl("start", "cluster", timeout=180)
        self.wait_ready()

    def diagnostics(self, lines: int = 15) -> str:
        """Which components are alive and the end of each component's log."""
        parts = []
        for pid_file in sorted((self.cluster_dir / "pids").glob("*.pid")):
            try:
                pid = int(pid_file.read_text().strip())
                # The third field of /proc/<pid>/stat: Z is a process that exited (unreaped).
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                state = f"exited (pid {pid})" if stat == "Z" else f"running (pid {pid})"
            except (ValueError, OSError) as exc:
                state = f"not running ({exc})"
            parts.append(f"{pid_file.stem}: {state}")
        for log in sorted((self.cluster_dir / "logs").glob("*.log")):
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts) or f"no pids or logs under {self.cluster_dir}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                api = self.api()
                try:
                    nodes = api.list(_NODES, None)
                finally:
                    api.close()
                ready = [n for n in nodes if _node_ready(n)]
                if len(ready) >= NODES:
                    return
                last = f"{len(ready)} of {NODES} nodes ready"
            except KubeApiError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise RuntimeError(f"cluster {self.name} not ready after {timeout}s: {last}")


_NODES = Kind("", "v1", "nodes", "Node", namespaced=False)


def _node_ready(node: dict[str, Any]) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


@pytest.fixture(scope="session")
def k8s_bin_dir() -> Path:
    """The testbed binaries; built (once, cached outside the repo) when missing."""
    return built(
        BUILD_SCRIPT,
        "the Kubernetes test cluster binaries",
        "Install Go >= 1.26 and reach the Go module proxy, then run scripts/build-k8s-testbed.sh",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kwokctl_config(bin_dir: Path) -> str:
    # Explicit ports: kwokctl's own choice is the same for clusters created at the same time.
    ports = "\n".join(
        f"  {option}: {_free_port()}"
        for option in (
            "kubeApiserverPort",
            "etcdPort",
            "etcdPeerPort",
            "kubeControllerManagerPort",
            "kubeSchedulerPort",
            "kwokControllerPort",
        )
    )
    return f"""\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
{ports}
  runtime: binary
  kubeBinaryPrefix: {bin_dir}
  kubeApiserverBinary: {bin_dir / "kube-apiserver"}
  kubeControllerManagerBinary: {bin_dir / "kube-controller-manager"}
  kubeSchedulerBinary: {bin_dir / "kube-scheduler"}
  kubectlBinary: {bin_dir / "kubectl"}
  etcdBinary: {bin_dir / "etcd"}
  kwokControllerBinary: {bin_dir / "kwok"}
  bindAddress: 127.0.0.1
  kubeAuthorization: true
  quietPull: true
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - key: advertise-address
        value: 127.0.0.1
"""


@pytest.fixture(scope="session")
def kube_cluster(
    k8s_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KwokCluster]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    failures: list[str] = []
    # A second attempt with fresh ports when the first cluster does not come up: on a
    # shared, loaded machine a port picked by _free_port() can be taken by another process
    # before the component binds it, and the component then exits.  The first failure is
    # printed with the components' logs, never hidden.
    for attempt in (1, 2):
        cluster = _start_cluster(
            f"prk-{worker}-{os.getpid()}-{attempt}", k8s_bin_dir, tmp_path_factory, failures
        )
        if cluster is not None:
            break
    else:
        raise RuntimeError("the kwok cluster did not come up twice:\n" + "\n\n".join(failures))
    if failures:
        print("kwok cluster came up on the second attempt; the first failed:\n" + failures[0])
    try:
        yield cluster
    finally:
        try:
            cluster.kwokctl("delete", "cluster", timeout=120)
        except Exception as exc:  # report, but do not hide the test's own failure
            print(f"kwokctl delete cluster {cluster.name} failed: {exc}")


def _start_cluster(
    name: str, bin_dir: Path, tmp_path_factory: pytest.TempPathFactory, failures: list[str]
) -> KwokCluster | None:
    """A ready cluster with the CRDs installed, or None (the reason appended to failures,
    the half-started cluster deleted)."""
    workdir = tmp_path_factory.mktemp("kwok")
    config = workdir / "kwokctl.yaml"
    cluster = KwokCluster(name, workdir, bin_dir, workdir / "kubeconfig")
    # One creation at a time across xdist workers (ports are taken when components start).
    lock = FileLock(str(tmp_path_factory.getbasetemp().parent / "kwokctl-create.lock"))
    try:
        with lock:
            config.write_text(_kwokctl_config(bin_dir), encoding="utf-8")
            cluster.kwokctl(
                "create",
                "cluster",
                "--config",
                str(config),
                "--runtime",
                "binary",
                "--wait",
                "120s",
            )
        kubeconfig = cluster.kwokctl("get", "kubeconfig").stdout
        cluster.kubeconfig.write_text(kubeconfig, encoding="utf-8")
        cluster.kwokctl("scale", "node", "--replicas", str(NODES))
        cluster.wait_ready()
        install_crds(cluster)
        return cluster
    except (RuntimeError, KubeApiError, subprocess.TimeoutExpired) as exc:
        failures.append(f"cluster {name}: {exc}\n{cluster.diagnostics()}")
        with contextlib.suppress(Exception):
            cluster.kwokctl("delete", "cluster", timeout=120)
        return None
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.kwokctl("delete", "cluster", timeout=120)
        raise


def install_crds(cluster: KwokCluster, files: Sequence[Path] = tuple(CRD_FILES)) -> None:
    """Create the CRDs of ``files`` and wait until the API server serves them."""
    api = cluster.api()
    try:
        names = []
        for path in files:
            for crd in load_yaml_documents(path):
                api.create(CRDS, None, crd)
                names.append(crd["metadata"]["name"])
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                crd = api.get(CRDS, None, name) or {}
                established = [
                    c
                    for c in (crd.get("status") or {}).get("conditions") or []
                    if c.get("type") == "Established" and c.get("status") == "True"
                ]
                if established:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not established: {crd.get('status')}")
                time.sleep(0.2)
    finally:
        api.close()


@pytest.fixture
def namespace(kube_cluster: KwokCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    api = kube_cluster.api()
    try:
        api.create(
            NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        yield name
    finally:
        # The cluster may be down after a failed test; it is deleted at the end anyway.
        with contextlib.suppress(KubeApiError):
            api.delete(NAMESPACES, None, name)
        api.close()

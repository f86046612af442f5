"""The Argo Rollouts controller and CRDs for the tests (scripts/build-argo-rollouts.sh,
cached by version), installing the CRDs on a test cluster (fixture ``argo_cluster``) and
running the controller as a process of the test (ended by its PID)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_release.system.processes import free_port
from tests.kubernetes.conftest import KwokCluster
from tests.support.builds import built
from tests.support.processes import running_process

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-argo-rollouts.sh"
ARGO_CRD_NAMES = (
    "rollouts.argoproj.io",
    "analysistemplates.argoproj.io",
    "analysisruns.argoproj.io",
    "clusteranalysistemplates.argoproj.io",
    "experiments.argoproj.io",
)


def built_argo_rollouts() -> Path:
    """The built controller binary (its CRDs in ``crds/`` beside it); built when missing.
    Fails in CI (which builds it first) and skips elsewhere, with the reason, when it
    cannot be built."""
    return built(
        BUILD_SCRIPT,
        "Argo Rollouts",
        "Install Go >= 1.26.1 and reach the Go module proxy, then run "
        "scripts/build-argo-rollouts.sh",
    )


def install_argo_crds(kubectl: list[str], crd_dir: Path, timeout: float = 60) -> None:
    """Apply the CRDs (server-side: the Rollout CRD is too large for a client-side apply's
    annotation) and wait until the API server serves them."""
    files = sorted(crd_dir.glob("*.yaml"))
    assert files, f"no CRD files in {crd_dir}"
    for path in files:
        subprocess.run(
            [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    deadline = time.monotonic() + timeout
    for name in ARGO_CRD_NAMES:
        while True:
            state = subprocess.run(
                [*kubectl, "get", "crd", name, "-o",
                 "jsonpath={.status.conditions[?(@.type=='Established')].status}"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if state.stdout.strip() == "True":
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not established: {state.stdout}{state.stderr}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def argo_cluster(kube_cluster: KwokCluster) -> KwokCluster:
    """The kwok test cluster with the Argo Rollouts CRDs installed."""
    crd_dir = built_argo_rollouts().parent / "crds"
    install_argo_crds(
        [str(kube_cluster.bin_dir / "kubectl"), "--kubeconfig", str(kube_cluster.kubeconfig)],
        crd_dir,
    )
    return kube_cluster


@contextmanager
def rollouts_controller(kubeconfig: Path, namespace: str, log: Path) -> Iterator[int]:
    """The built controller watching ``namespace`` only (namespaced mode, no leader
    election, its own metrics and health ports); its output in ``log``; yields its PID."""
    binary = built_argo_rollouts()
    command = [
        str(binary), "--kubeconfig", str(kubeconfig), "--namespaced",
        "--namespace", namespace, "--leader-elect=false", "--loglevel", "info",
        "--metricsPort", str(free_port("127.0.0.1")),
        "--healthzPort", str(free_port("127.0.0.1")),
    ]  # fmt: skip
    with running_process(command, log) as pid:
        yield pid

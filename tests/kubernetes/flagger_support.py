"""Flagger for the tests: its CRDs (v1.36.1, vendored in tests/data/flagger) installed on
the kwok test cluster (fixture ``flagger_cluster``), and the controller built by
scripts/build-flagger.sh (cached by version) run as a process of the test, ended by its
PID."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_release.canary.platforms.kubernetes.client import CRDS
from pytest_release.system.processes import free_port
from tests.kubernetes.argo_crds import REPO
from tests.kubernetes.conftest import KwokCluster, install_crds
from tests.support.builds import built
from tests.support.processes import running_process

FLAGGER_CRDS = REPO / "tests" / "data" / "flagger" / "crd-v1.36.1.yaml"
BUILD_SCRIPT = REPO / "scripts" / "build-flagger.sh"


@pytest.fixture(scope="module")
def flagger_cluster(kube_cluster: KwokCluster) -> KwokCluster:
    """The kwok test cluster with Flagger's CRDs installed."""
    api = kube_cluster.api()
    try:
        installed = api.get(CRDS, None, "canaries.flagger.app") is not None
    finally:
        api.close()
    if not installed:
        install_crds(kube_cluster, [FLAGGER_CRDS])
    return kube_cluster


def built_flagger() -> Path:
    """The built controller. Not built by .ci/run (a cold build took 15 min here): when it
    is not in the cache, the test skips with the reason, unless PYTEST_RELEASE_BUILD_FLAGGER=1
    asks to build it (then it fails in CI and skips elsewhere when it cannot be built)."""
    printed = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    binary = Path(printed.stdout.strip()) / "flagger"
    if not binary.is_file() and os.environ.get("PYTEST_RELEASE_BUILD_FLAGGER") != "1":
        pytest.skip(
            f"Flagger is not built ({binary} is missing) and .ci/run does not build it: run "
            "scripts/build-flagger.sh (about 15 min cold) or set PYTEST_RELEASE_BUILD_FLAGGER=1"
        )
    return built(
        BUILD_SCRIPT,
        "Flagger",
        f"Install Go and reach the Go module proxy, then run {BUILD_SCRIPT.relative_to(REPO)}",
    )


@contextmanager
def flagger_controller(kubeconfig: Path, namespace: str, log: Path) -> Iterator[int]:
    """The built controller watching ``namespace`` only, with Traefik as its provider (the
    test bed's traefik.containo.us CRDs), no metrics server (the analysis is the webhooks
    only), its own HTTP port; its output in ``log``; yields its PID."""
    binary = built_flagger()
    command = [
        str(binary), "-kubeconfig", str(kubeconfig), "-namespace", namespace,
        "-mesh-provider", "traefik", "-log-level", "info", "-zap-encoding", "console",
        "-port", str(free_port("127.0.0.1")),
        "-metrics-server", f"http://127.0.0.1:{free_port('127.0.0.1')}",
        "-enable-config-tracking=false",
    ]  # fmt: skip
    with running_process(command, log) as pid:
        yield pid

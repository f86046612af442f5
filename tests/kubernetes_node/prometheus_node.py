"""A real Prometheus inside the cluster's network namespace, scraping Traefik's metrics.

Prometheus runs in the namespace (``ip netns exec``) on its loopback, where the stages
under test (also run in the namespace) reach it; the test process reaches it through a
loopback port of the host's namespace (forward.py, its own forwarder).  Both are the
test's own processes, ended by PID afterwards, also when the test fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_release.system.processes import free_port
from tests.canary.prometheus_support import Prometheus, running_prometheus
from tests.kubernetes_node.cluster import FORWARDER, NodeCluster, wait_for


@contextmanager
def forwarded(cluster: NodeCluster, target: str, workdir: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` in the host's namespace leading to ``target`` (host:port
    as seen inside the cluster's namespace)."""
    ports_file = workdir / f"forward-{time.monotonic_ns()}.json"
    command = [sys.executable, str(FORWARDER), f"/run/netns/{cluster.netns}", str(ports_file)]
    proc = subprocess.Popen([*command, target], stderr=subprocess.DEVNULL)
    try:
        wait_for(
            f"a loopback forward to {target}",
            lambda: proc.poll() is None and ports_file.exists(),
            timeout=30,
            interval=0.1,
        )
        yield f"http://127.0.0.1:{json.loads(ports_file.read_text())[target]}"
    finally:
        proc.terminate()  # our own child, by PID
        proc.wait(15)


@contextmanager
def traefik_prometheus(cluster: NodeCluster, workdir: Path) -> Iterator[Prometheus]:
    """Prometheus in the namespace scraping Traefik's ``/metrics`` every second; its
    ``url`` is for the stages, its ``test_url`` for the test."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()  # of the namespace's own loopback, where little else listens
    traefik = cluster.traefik_api_url.removeprefix("http://")
    with (
        forwarded(cluster, f"127.0.0.1:{port}", workdir) as test_url,
        running_prometheus(
            workdir, [traefik], port=port, wrap=cluster.netns_command, test_url=test_url
        ) as prometheus,
    ):
        yield prometheus

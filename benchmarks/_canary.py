"""Shared parts of the canary benchmarks: the engine's real local platform (process mode,
``tests/services/fault_service.py`` replicas), its HAProxy router, and a load loop that
counts every request through the router.  Everything started is ended by PID."""

from __future__ import annotations

import http.client
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _common import REPO, BenchmarkError

from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.platforms.local.rollout import LocalRollout
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.sampler import Targets
from pytest_release.canary.samples import ReplicaStatus

FAULT_SERVICE = REPO / "tests" / "services" / "fault_service.py"
STABLE_IMAGE = "v1"


@dataclass
class Stack:
    platform: LocalPlatform
    router: HAProxyRouter
    rollout: LocalRollout

    def replicas(self) -> tuple[ReplicaStatus, ...]:
        """The platform's replica status (the sampler's status source, as in the gate)."""
        return self.platform.status().replicas

    def targets(self) -> Targets:
        """What the sampler measures, built like the canary gate builds it."""
        status = self.platform.status()
        names = {r.endpoint: r.name for r in status.replicas}
        for server, endpoint in self.router.server_endpoints().items():
            if endpoint in names:
                names[server] = names[endpoint]
        return Targets(
            router_url=self.router.url,
            stable=status.endpoints("stable"),
            canary=status.endpoints("canary"),
            names=names,
        )


def platform_config(
    state_dir: Path, image_env: Mapping[str, Mapping[str, str]], stable_replicas: int = 1
) -> LocalPlatformConfig:
    return LocalPlatformConfig.model_validate(
        {
            "type": "local-process",
            "command": [
                sys.executable,
                str(FAULT_SERVICE),
                "--port",
                "{port}",
                "--version",
                "{image}",
            ],
            "image_env": {k: dict(v) for k, v in image_env.items()},
            "stable_image": STABLE_IMAGE,
            "stable_replicas": stable_replicas,
            "ready_timeout": 30.0,
            "state_dir": str(state_dir),
        }
    )


@contextmanager
def local_stack(
    state_dir: Path, image_env: Mapping[str, Mapping[str, str]], stable_replicas: int = 1
) -> Iterator[Stack]:
    """Main deployment (``v1``) behind a fresh HAProxy; torn down by PID afterwards."""
    if shutil.which("haproxy") is None:
        raise BenchmarkError("haproxy is not on PATH: apt-get install -y haproxy")
    if not FAULT_SERVICE.exists():
        raise BenchmarkError(f"{FAULT_SERVICE} is missing; run from a full checkout")
    config = platform_config(state_dir, image_env, stable_replicas)
    platform = LocalPlatform(config, REPO)
    router = HAProxyRouter(HAProxyConfig(slots=8, drain_timeout=10.0), platform.state_dir)
    rollout = LocalRollout(
        platform, router, stable_image=STABLE_IMAGE, stable_replicas=stable_replicas
    )
    try:
        rollout.ensure_main()
        yield Stack(platform, router, rollout)
    finally:
        try:
            platform.cleanup()
        finally:
            router.stop()


@dataclass(frozen=True)
class Response:
    started: float  # time.time()
    ended: float
    status: int | None  # None: transport error
    version: str  # X-Version, "" when none
    error: str = ""


@dataclass
class LoadLoop:
    """Closed-loop requests through the router (one keep-alive connection per thread,
    ``threads`` threads, ``pause`` seconds between requests); every response is kept."""

    port: int
    threads: int = 2
    pause: float = 0.002
    responses: list[Response] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def _run(self) -> None:
        conn = self._connect()
        while not self._stop.is_set():
            started = time.time()
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                record = Response(
                    started, time.time(), response.status, response.getheader("X-Version") or ""
                )
            except (OSError, http.client.HTTPException) as exc:
                record = Response(started, time.time(), None, "", f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = self._connect()
            with self._lock:
                self.responses.append(record)
            time.sleep(self.pause)
        conn.close()

    def start(self) -> LoadLoop:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"bench-load-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(15)

    def between(self, start: float, end: float) -> list[Response]:
        with self._lock:
            return [r for r in self.responses if start <= r.started < end]


@contextmanager
def load_through(port: int, threads: int = 2) -> Iterator[LoadLoop]:
    loop = LoadLoop(port, threads=threads).start()
    try:
        yield loop
    finally:
        loop.stop()

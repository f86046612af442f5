"""Shared parts of the canary benchmarks: the engine's real local platform (process mode,
``tests/services/fault_service.py`` replicas), its HAProxy router, and a load loop that
counts every request through the router.  Everything started is ended by PID."""

from __future__ import annotations

import http.client
import math
import random
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _common import REPO, BenchmarkError

from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.rollout import Rollout
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.sampler import Targets
from pytest_release.canary.samples import ReplicaStatus, Sample

FAULT_SERVICE = REPO / "tests" / "services" / "fault_service.py"
STABLE_IMAGE = "v1"


@dataclass
class Stack:
    platform: LocalPlatform
    router: HAProxyRouter
    rollout: Rollout

    def replicas(self) -> tuple[ReplicaStatus, ...]:
        """The platform's replica status (the sampler's status source, as in the gate)."""
        return self.platform.status().replicas

    def targets(self) -> Targets:
        """What the sampler measures: the rollout's own targets, as in the gate."""
        return self.rollout.targets()


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
    rollout = Rollout(platform, router, stable_image=STABLE_IMAGE, stable_replicas=stable_replicas)
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


# -- synthetic holds: Poisson arrivals, random error draws, shared host load -------------------
# The >= 200-run statistics of figure 4 feed these to the real Judge (and to the reference
# rules); the recorded samples above stay the check that the model matches real runs.

SIM_INTERVAL = 60.0  # the shipped default interval
SIM_LOOKS = 15  # the shipped canary-1 hold: 15 min
SIM_PROBE_EVERY = 1.0  # sampler.health_interval default
DEMO_DIRECT_RATE = 10.0  # sampler.direct_rate default (the demo profile keeps it)
BASE_LATENCY_MS = 8.0


@dataclass(frozen=True)
class Fault:
    """What the canary does differently from stable in a synthetic hold."""

    name: str
    description: str
    extra_error: float = 0.0  # added to the background error probability
    extra_latency_ms: float = 0.0  # on every canary response
    latency_growth_ms_per_min: float = 0.0  # grows from 0 over the hold
    crash_mean_up_s: float | None = None  # crash loop: mean seconds up between crashes
    endpoint_share: float = 0.0  # share of requests to an endpoint that always fails
    health_fail: float = 0.0  # probability that a /health probe fails


FAULTS: tuple[Fault, ...] = (
    Fault("errors+1.5%", "1.5 % more of the canary's requests answer 500", extra_error=0.015),
    Fault("errors+4.5%", "4.5 % more of the canary's requests answer 500", extra_error=0.045),
    Fault("latency+300ms", "+300 ms on every canary response", extra_latency_ms=300.0),
    Fault(
        "latency-growing",
        "canary latency grows by 20 ms a minute (+300 ms at the end of the hold)",
        latency_growth_ms_per_min=20.0,
    ),
    Fault(
        "crash-loop",
        "the canary crashes after 20 s up on average, down 2-10 s (requests refused, "
        "/health fails, a restart each time)",
        crash_mean_up_s=20.0,
    ),
    Fault(
        "endpoint-10%",
        "one endpoint, 10 % of requests, always answers 500 on the canary",
        endpoint_share=0.10,
    ),
    Fault("flapping-health", "20 % of the canary's /health probes fail", health_fail=0.20),
)
AA = Fault("A/A", "the canary is the same version as stable")


@dataclass(frozen=True)
class SimRun:
    samples: tuple[Sample, ...]
    statuses: tuple[ReplicaStatus, ...]
    start: float


def _host_load(rng: random.Random, seconds: float) -> list[tuple[float, float, float]]:
    """Episodes (start, end, factor) of host load that slow both versions alike."""
    episodes = []
    t = rng.expovariate(1 / 180.0)
    while t < seconds:
        length = rng.uniform(20.0, 90.0)
        episodes.append((t, t + length, rng.uniform(1.5, 4.0)))
        t += length + rng.expovariate(1 / 180.0)
    return episodes


def _load_factor(episodes: Sequence[tuple[float, float, float]], t: float) -> float:
    for start, end, factor in episodes:
        if start <= t < end:
            return factor
    return 1.0


def simulate_hold(
    seed: int,
    fault: Fault,
    background: float,
    direct_rate: float,
    *,
    interval: float = SIM_INTERVAL,
    looks: int = SIM_LOOKS,
    start: float = 1_800_000_000.0,
) -> SimRun:
    """One synthetic hold: Poisson arrivals at ``direct_rate`` per version (the sampler's
    direct requests), each an error with probability ``background`` (+ the fault's), a
    log-normal latency (median 8 ms) with rare 50-300 ms pauses, slowed by shared host-load
    episodes; /health probes every second; replica status every 5 s."""
    rng = random.Random(seed)
    seconds = interval * looks
    episodes = _host_load(rng, seconds)
    crashes: list[tuple[float, float]] = []  # (down from, up again)
    if fault.crash_mean_up_s is not None:
        t = rng.expovariate(1 / fault.crash_mean_up_s)
        while t < seconds:
            down = rng.uniform(2.0, 10.0)
            crashes.append((t, t + down))
            t += down + rng.expovariate(1 / fault.crash_mean_up_s)

    def down(t: float) -> bool:
        return any(a <= t < b for a, b in crashes)

    samples: list[Sample] = []
    for target in ("stable", "canary"):
        canary = target == "canary"
        replica = f"{target}-0"
        t = rng.expovariate(direct_rate)
        while t < seconds:
            load = _load_factor(episodes, t)
            if canary and down(t):
                samples.append(Sample(start + t, "canary", "http", False, None, None, replica))
                t += rng.expovariate(direct_rate)
                continue
            latency = BASE_LATENCY_MS * math.exp(rng.gauss(0.0, 0.6))
            if rng.random() < 0.005:
                latency += rng.uniform(50.0, 300.0)
            error_p = background
            if canary:
                latency += fault.extra_latency_ms + fault.latency_growth_ms_per_min * t / 60.0
                error_p += fault.extra_error
                if rng.random() < fault.endpoint_share:
                    error_p = 1.0
            ok = rng.random() >= error_p
            samples.append(
                Sample(
                    start + t,
                    "stable" if not canary else "canary",
                    "http",
                    ok,
                    latency * load,
                    200 if ok else 500,
                    replica,
                )
            )
            t += rng.expovariate(direct_rate)
        probe = rng.uniform(0.0, SIM_PROBE_EVERY)
        while probe < seconds:
            failed = canary and (down(probe) or rng.random() < fault.health_fail)
            samples.append(
                Sample(
                    start + probe,
                    "canary" if canary else "stable",
                    "health",
                    not failed,
                    None if failed else 2.0 * _load_factor(episodes, probe),
                    None if failed else 200,
                    replica,
                )
            )
            probe += SIM_PROBE_EVERY
    samples.sort(key=lambda s: s.timestamp)
    statuses = []
    for i in range(int(seconds // 5.0) + 1):
        t = i * 5.0
        restarts = sum(1 for a, _ in crashes if a <= t)
        for name, version in (("stable-0", "stable"), ("canary-0", "canary")):
            statuses.append(
                ReplicaStatus(
                    timestamp=start + t,
                    name=name,
                    version="canary" if version == "canary" else "stable",
                    image="",
                    running=not (version == "canary" and down(t)),
                    ready=not (version == "canary" and down(t)),
                    restarts=restarts if version == "canary" else 0,
                    endpoint=name,
                )
            )
    return SimRun(tuple(samples), tuple(statuses), start)

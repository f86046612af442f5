"""Measurements during a canary hold: bounded HTTP load, /health probes, platform status,
and optional Prometheus queries.

The :class:`Sampler` runs an asyncio loop in a background thread for the whole hold:

* requests through the router at ``rate`` per second (target ``router``), and directly
  at each group's replicas at ``direct_rate`` per second per group (targets ``stable``
  and ``canary``), cycling through ``paths``; at most ``concurrency`` in flight and at
  most ``max_requests`` in total;
* a ``/health`` probe of every replica each ``health_interval``;
* the platform's replica status each ``status_interval``;
* the configured PromQL queries each ``status_interval`` (real ``/api/v1/query`` API).

Every measurement keeps its timestamp, target and outcome; items take the ones of their
interval with :meth:`Sampler.samples`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_release.canary.config import PrometheusConfig, SamplerConfig
from pytest_release.canary.samples import ReplicaStatus, Sample, SampleKind, Target
from pytest_release.errors import EvidenceError

if TYPE_CHECKING:
    import httpx


# -- Prometheus ---------------------------------------------------------------------------
class PrometheusError(EvidenceError):
    """A query failed; the message names the query, the server and the reason."""


@dataclass(frozen=True)
class MetricSample:
    """One series of a PromQL instant query result (or the error of that query)."""

    timestamp: float
    name: str
    query: str
    value: float | None
    labels: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""


class PrometheusClient:
    """The HTTP API of Prometheus: ``GET /api/v1/query?query=...&time=...``."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, name: str, promql: str, at: float | None = None) -> list[MetricSample]:
        import httpx

        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        endpoint = f"{self.url}/api/v1/query"
        try:
            response = httpx.get(endpoint, params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"query {name!r} ({promql}) to {endpoint} failed: {type(exc).__name__}: {exc}"
            ) from None
        return parse_query_response(name, promql, response.status_code, response.text, endpoint)


def parse_query_response(
    name: str, promql: str, status: int, text: str, endpoint: str = "Prometheus"
) -> list[MetricSample]:
    import json

    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        raise PrometheusError(
            f"query {name!r} to {endpoint}: HTTP {status}, not a Prometheus JSON answer: "
            f"{text[:200]!r}"
        ) from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        kind = body.get("errorType") if isinstance(body, dict) else None
        raise PrometheusError(
            f"query {name!r} ({promql}) to {endpoint}: HTTP {status}, {kind or 'error'}: "
            f"{error or text[:200]}"
        )
    data = body.get("data", {})
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        ts, value = result
        return [MetricSample(float(ts), name, promql, _number(value))]
    if kind != "vector" or not isinstance(result, list):
        raise PrometheusError(
            f"query {name!r} ({promql}) returned a {kind!r} result; use an instant query that "
            "yields a vector or a scalar"
        )
    samples = []
    for series in result:
        ts, value = series["value"]
        labels = {str(k): str(v) for k, v in series.get("metric", {}).items()}
        samples.append(MetricSample(float(ts), name, promql, _number(value), labels))
    return samples


def _number(value: object) -> float:
    return float(str(value))  # Prometheus sends "NaN", "+Inf" and decimals as strings


# -- Load and probes -------------------------------------------------------------------------
@dataclass(frozen=True)
class Targets:
    """Where the sampler sends requests during one hold."""

    router_url: str | None
    stable: tuple[str, ...]  # host:port of each replica
    canary: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)  # endpoint or server -> replica


class Sampler:
    def __init__(
        self,
        config: SamplerConfig,
        targets: Targets,
        status: Callable[[], Sequence[ReplicaStatus]] | None = None,
        health_path: str = "/health",
    ) -> None:
        self.config = config
        self.targets = targets
        self.status_source = status
        self.health_path = health_path
        self._samples: list[Sample] = []
        self._statuses: list[ReplicaStatus] = []
        self._metrics: list[MetricSample] = []
        self._errors: list[str] = []
        self._inflight: dict[int, float] = {}
        self._requests: set[asyncio.Task[None]] = set()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.requests_sent = 0
        self.started_at: float | None = None

    # -- public --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="pytest-release-sampler", daemon=True
        )
        self._thread.start()
        self._started.wait(10.0)

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self.config.timeout + 5.0)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def samples(self, start: float | None = None, end: float | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self._samples if _within(s.timestamp, start, end)]

    def statuses(self, start: float | None = None, end: float | None = None) -> list[ReplicaStatus]:
        with self._lock:
            return [s for s in self._statuses if _within(s.timestamp, start, end)]

    def metrics(self, start: float | None = None, end: float | None = None) -> list[MetricSample]:
        with self._lock:
            return [m for m in self._metrics if _within(m.timestamp, start, end)]

    def settle(self, until: float) -> None:
        """Wait (at most the request timeout) for requests started before ``until`` to
        finish, so an interval is judged on every request it started."""
        deadline = time.monotonic() + self.config.timeout + 0.5
        while time.monotonic() < deadline:
            with self._lock:
                pending = [t for t in self._inflight.values() if t < until]
            if not pending or not self.running:
                return
            time.sleep(0.02)

    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception as exc:  # pragma: no cover - reported through errors()
            with self._lock:
                self._errors.append(f"sampler stopped: {type(exc).__name__}: {exc}")
        finally:
            self._started.set()
            loop.close()

    async def _main(self) -> None:
        import httpx

        self._stop = asyncio.Event()
        self.started_at = time.time()
        c = self.config
        limits = httpx.Limits(
            max_connections=c.concurrency, max_keepalive_connections=c.concurrency
        )
        semaphore = asyncio.Semaphore(c.concurrency)
        async with httpx.AsyncClient(timeout=c.timeout, limits=limits) as client:
            tasks = []
            if self.targets.router_url and c.rate > 0:
                urls = [self.targets.router_url.rstrip("/")]
                tasks.append(self._load(client, semaphore, "router", urls, c.rate))
            groups: list[tuple[Target, tuple[str, ...]]] = [
                ("stable", self.targets.stable),
                ("canary", self.targets.canary),
            ]
            for group, endpoints in groups:
                if endpoints and c.direct_rate > 0:
                    urls = [f"http://{e}" for e in endpoints]
                    tasks.append(self._load(client, semaphore, group, urls, c.direct_rate))
            tasks.append(self._health(client))
            if self.status_source is not None:
                tasks.append(self._status())
            if c.prometheus is not None and c.prometheus.queries:
                tasks.append(self._prometheus(c.prometheus))
            self._started.set()
            running = [asyncio.ensure_future(t) for t in tasks]
            await self._stop.wait()
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            # Every request sent becomes a sample: let those in flight finish (bounded).
            if self._requests:
                await asyncio.wait(set(self._requests), timeout=c.timeout + 1.0)
            for request in set(self._requests):
                request.cancel()

    def _add(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    async def _load(
        self,
        client: httpx.AsyncClient,
        semaphore: asyncio.Semaphore,
        target: Target,
        bases: list[str],
        rate: float,
    ) -> None:
        period = 1.0 / rate
        cycle = itertools.cycle([(b, p) for p in self.config.paths for b in bases])
        pending = self._requests
        next_at = time.monotonic()
        limit = self.config.max_requests
        # Requests in flight are awaited by _main when the sampler stops.
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            # A loop that fell behind (all slots busy) does not burst to catch up.
            next_at = max(next_at + period, time.monotonic())
            await semaphore.acquire()
            # Checked after the wait: other loops may have sent the last ones meanwhile.
            if limit is not None and self.requests_sent >= limit:
                semaphore.release()
                return
            self.requests_sent += 1
            base, path = next(cycle)
            task = asyncio.ensure_future(self._request(client, semaphore, target, base, path))
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _request(
        self,
        client: httpx.AsyncClient,
        semaphore: asyncio.Semaphore,
        target: Target,
        base: str,
        path: str,
    ) -> None:
        request_id = next(self._ids)
        with self._lock:
            self._inflight[request_id] = time.time()
        endpoint = base.removeprefix("http://")
        replica = None if target == "router" else self.targets.names.get(endpoint, endpoint)
        try:
            await self._sample_get(client, base + path, path, target, "http", replica)
        finally:
            with self._lock:
                self._inflight.pop(request_id, None)
            semaphore.release()

    async def _sample_get(
        self,
        client: httpx.AsyncClient,
        url: str,
        label: str,
        target: Target,
        kind: SampleKind,
        replica: str | None,
    ) -> None:
        """GET ``url`` and record one sample: the response (status, latency, and which
        replica answered through the router) or the transport error."""
        import httpx

        started = time.time()
        t0 = time.perf_counter()
        prefix = f"GET {label}" if kind == "http" else label
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            self._add(
                Sample(
                    timestamp=started,
                    target=target,
                    kind=kind,
                    ok=False,
                    latency_ms=None,
                    replica=replica,
                    detail=f"{prefix}: {type(exc).__name__}: {exc}",
                )
            )
            return
        latency = (time.perf_counter() - t0) * 1000.0
        if target == "router":
            server = response.headers.get("x-release-server")
            replica = self.targets.names.get(server, server) if server else None
        ok = response.status_code < 400
        self._add(
            Sample(
                timestamp=started,
                target=target,
                kind=kind,
                ok=ok,
                latency_ms=latency,
                status_code=response.status_code,
                replica=replica,
                detail="" if ok else f"{prefix} -> {response.status_code}",
            )
        )

    async def _health(self, client: httpx.AsyncClient) -> None:
        groups: list[tuple[Target, str]] = [("stable", e) for e in self.targets.stable]
        groups += [("canary", e) for e in self.targets.canary]

        async def probe(target: Target, endpoint: str) -> None:
            replica = self.targets.names.get(endpoint, endpoint)
            url = f"http://{endpoint}{self.health_path}"
            await self._sample_get(client, url, self.health_path, target, "health", replica)

        while True:
            await asyncio.gather(*(probe(t, e) for t, e in groups))
            await asyncio.sleep(self.config.health_interval)

    async def _status(self) -> None:
        assert self.status_source is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                statuses = await loop.run_in_executor(None, self.status_source)
            except Exception as exc:
                with self._lock:
                    self._errors.append(f"platform status failed: {type(exc).__name__}: {exc}")
            else:
                with self._lock:
                    self._statuses.extend(statuses)
            await asyncio.sleep(self.config.status_interval)

    async def _prometheus(self, config: PrometheusConfig) -> None:
        client = PrometheusClient(config.url, config.timeout)
        loop = asyncio.get_running_loop()
        while True:
            for name, q in config.queries.items():
                now = time.time()
                try:
                    result: list[MetricSample] = await loop.run_in_executor(
                        None, client.query, name, q.query, now
                    )
                except PrometheusError as exc:
                    result = [MetricSample(now, name, q.query, None, detail=str(exc))]
                # Keep the time of the measurement on our clock (the window it belongs to).
                stamped = [
                    MetricSample(now, m.name, m.query, m.value, m.labels, m.detail) for m in result
                ]
                with self._lock:
                    self._metrics.extend(stamped)
            await asyncio.sleep(self.config.status_interval)


def _within(timestamp: float, start: float | None, end: float | None) -> bool:
    return (start is None or timestamp >= start) and (end is None or timestamp < end)


def check_metrics(
    metrics: Sequence[MetricSample], config: PrometheusConfig
) -> tuple[list[str], list[tuple[str, str]]]:
    """Failures (query, value, bound) and JUnit properties for one interval's metrics."""
    failures: list[str] = []
    properties: list[tuple[str, str]] = []
    for name, q in config.queries.items():
        mine = [m for m in metrics if m.name == name]
        values = [m.value for m in mine if m.value is not None]
        errors = [m.detail for m in mine if m.detail]
        if errors and not values:
            failures.append(f"prometheus {name}: {errors[-1]}")
            continue
        if not values:
            properties.append((f"prometheus.{name}", "no data"))
            continue
        latest_time = max(m.timestamp for m in mine if m.value is not None)
        latest = [m.value for m in mine if m.value is not None and m.timestamp == latest_time]
        worst_max = max(v for v in values)
        worst_min = min(v for v in values)
        properties.append((f"prometheus.{name}", ", ".join(f"{v:g}" for v in latest)))
        if q.max is not None and worst_max > q.max:
            failures.append(f"prometheus {name} = {worst_max:g} > max {q.max:g} ({q.query})")
        if q.min is not None and worst_min < q.min:
            failures.append(f"prometheus {name} = {worst_min:g} < min {q.min:g} ({q.query})")
    return failures, properties

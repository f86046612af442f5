"""Synthetic samples for the judge, plot and progress tests (pure data, no I/O)."""

from __future__ import annotations

import calendar
from collections.abc import Callable

from pytest_release.canary.samples import ReplicaStatus, Sample, Target

# 2026-01-01 12:00:00 UTC: messages show wall-clock windows such as 12:00:00-12:01:00.
T0 = float(calendar.timegm((2026, 1, 1, 12, 0, 0, 0, 0, 0)))


def http(
    timestamp: float,
    target: Target = "canary",
    *,
    ok: bool = True,
    latency_ms: float | None = 20.0,
    replica: str | None = None,
) -> Sample:
    return Sample(
        timestamp=timestamp,
        target=target,
        kind="http",
        ok=ok,
        latency_ms=latency_ms,
        status_code=(200 if ok else 500) if latency_ms is not None else None,
        replica=replica,
        detail="" if ok else "HTTP 500",
    )


def health(timestamp: float, *, ok: bool = True, replica: str = "canary-0") -> Sample:
    return Sample(
        timestamp=timestamp,
        target="canary",
        kind="health",
        ok=ok,
        latency_ms=3.0 if ok else None,
        status_code=200 if ok else None,
        replica=replica,
        detail="" if ok else "connection refused",
    )


def traffic(
    start: float,
    end: float,
    target: Target = "canary",
    *,
    per_second: float = 2.0,
    fail: Callable[[int], bool] = lambda i: False,
    latency: Callable[[int], float | None] = lambda i: 20.0 + i % 7,
) -> list[Sample]:
    """Evenly spaced requests over ``[start, end)``; ``fail(i)``/``latency(i)`` per request."""
    count = round((end - start) * per_second)
    step = 1.0 / per_second
    return [
        http(start + i * step, target, ok=not fail(i), latency_ms=latency(i)) for i in range(count)
    ]


def probes(
    start: float, end: float, *, every: float = 5.0, replica: str = "canary-0"
) -> list[Sample]:
    count = round((end - start) / every)
    return [health(start + i * every, replica=replica) for i in range(count)]


def status(
    timestamp: float,
    *,
    name: str = "canary-0",
    version: str = "canary",
    restarts: int = 0,
) -> ReplicaStatus:
    assert version in ("stable", "canary")
    return ReplicaStatus(
        timestamp=timestamp,
        name=name,
        version="canary" if version == "canary" else "stable",
        image=f"local/shop:{version}",
        running=True,
        ready=True,
        restarts=restarts,
        endpoint="127.0.0.1:18081",
    )


def healthy_interval(start: float, end: float) -> list[Sample]:
    """Canary and stable traffic plus /health probes, all fine."""
    return [
        *traffic(start, end, "canary"),
        *traffic(start, end, "stable", per_second=6.0),
        *probes(start, end),
    ]

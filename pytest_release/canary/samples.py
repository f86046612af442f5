"""Measurements taken during a canary hold; the judge decides from these alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Target = Literal["stable", "canary", "router"]
SampleKind = Literal["http", "health"]


@dataclass(frozen=True)
class Sample:
    """One HTTP request or /health probe and its outcome."""

    timestamp: float  # time.time() when the request started
    target: Target
    kind: SampleKind
    ok: bool  # 2xx/3xx and no transport error
    latency_ms: float | None  # None when no response arrived
    status_code: int | None = None
    replica: str | None = None  # which replica answered/was probed, when known
    detail: str = ""  # error text for failed samples


@dataclass(frozen=True)
class ReplicaStatus:
    """Platform view of one replica at ``timestamp``."""

    timestamp: float
    name: str
    version: Literal["stable", "canary"]
    image: str
    running: bool
    ready: bool
    restarts: int
    endpoint: str  # e.g. "127.0.0.1:18081"
    # Why the platform says it is in this state, one line each (Kubernetes: the container's
    # waiting reason, last termination, warning events such as BackOff or Unhealthy).
    events: tuple[str, ...] = ()

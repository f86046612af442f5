"""Configuration of the canary engine's evidence: the sampler's load and probes and the
Prometheus queries (the platform, router and judge tables live beside their code:
``platforms/*/config.py``, ``routers/*/config.py``, :mod:`.judge`; the effective settings
of one canary gate, which name them all, are :mod:`.settings`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.config.types import Duration, PositiveDuration, check_http_url


class PrometheusQuery(BaseModel):
    """One named PromQL query (``queries.<query>``) and its bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1)
    """PromQL instant query, run every status_interval; every value it returns during an interval is
    checked against max and min."""
    max: float | None = None
    """Fail the interval above this value."""
    min: float | None = None
    """Fail the interval below this value."""


class PrometheusConfig(BaseModel):
    """``[...canary.sampler.prometheus]``: PromQL instant queries, e.g.
    ``queries.error_ratio = {query = 'sum(rate(http_errors[1m]))', max = 0.01}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Prometheus base URL, e.g. http://127.0.0.1:9090"""
    queries: dict[str, PrometheusQuery] = Field(default_factory=dict)
    """Named queries, one table {query, max, min} per name; reports show each as prometheus.<query>.
    Empty: Prometheus is not queried."""
    timeout: Duration = 5.0
    """Seconds per query request."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value, "http://127.0.0.1:9090")


class SamplerConfig(BaseModel):
    """``[tool.pytest-release.gates.canary.sampler]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=20.0, ge=0)
    """Requests/s through the router."""
    direct_rate: float = Field(default=10.0, ge=0)
    """Requests/s sent directly to each group's replicas."""
    paths: tuple[str, ...] = ("/",)
    """Request paths (each starting with '/'), used in turn by the load through the router and
    directly to the replicas."""
    health_interval: PositiveDuration = 1.0
    """Seconds between /health probes of every replica (the path is the platform's health_path)."""
    status_interval: PositiveDuration = 1.0
    """Seconds between reads of the platform's replica status (restarts, readiness) and between
    rounds of Prometheus queries."""
    concurrency: int = Field(default=16, ge=1, le=1000)
    """Most load requests in flight at once (all targets together); when all are busy the rate drops
    instead of bursting later."""
    timeout: PositiveDuration = 5.0
    """Seconds per load request and health probe; one that times out counts as failed."""
    max_requests: int | None = Field(default=None, ge=1)
    """Load requests sent over the whole hold at most (all targets together); unset: no limit."""
    prometheus: PrometheusConfig | None = None
    """Prometheus queries checked every interval; unset: none."""

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one path, e.g. ['/']")
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"paths must start with '/', got {path!r}")
        return value

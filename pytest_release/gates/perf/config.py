"""The ``perf`` gate's table (``kind = "perf"``) and its constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_release.config import GateConfig
from pytest_release.config.types import PositiveDuration
from pytest_release.gates.tool_command import refuse_empty_paths, refuse_reserved_flags

KIND: Literal["perf"] = "perf"
STATUS_NAME = "(locust run)"
OTHERS_NAME = "(other endpoints)"
DEFAULT_LOCUSTFILES = ("tests/perf/locustfile.py", "suites/perf/locustfile.py")
INSTALL_HINT = (
    "install it with `pip install 'pytest-release[perf]'` (or `pip install locust`) in the "
    'environment that runs pytest, or set locust = "path/to/locust" in '
    "[tool.pytest-release.gates.{gate}]"
)
# Locust flags the gate sets itself, with the key to use instead.
_RESERVED_FLAGS = {
    "-f": "locustfile",
    "--locustfile": "locustfile",
    "-H": "host",
    "--host": "host",
    "-u": "users",
    "--users": "users",
    "-r": "spawn_rate",
    "--spawn-rate": "spawn_rate",
    "-t": "duration",
    "--run-time": "duration",
    "--headless": "(the gate always runs Locust headless)",
    "--autostart": "(the gate always runs Locust headless)",
    "--csv": "(the gate reads the CSV statistics itself)",
    "--csv-full-history": "(the gate reads the CSV statistics itself)",
    "--html": "(the gate writes the HTML report to the stage's reports dir)",
    "--only-summary": "(set by the gate)",
    "--master": "(the gate runs one local Locust process)",
    "--worker": "(the gate runs one local Locust process)",
    "--processes": "(the gate runs one local Locust process)",
}


class EndpointLimits(BaseModel):
    """Limits for one endpoint (``"GET /api/products"``); unset keys use the gate's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate_below: float | None = Field(default=None, gt=0, le=1)
    """Failure share limit; unset: the gate's."""
    p50_below_ms: float | None = Field(default=None, gt=0)
    """Median latency limit (ms); unset: the gate's."""
    p95_below_ms: float | None = Field(default=None, gt=0)
    """p95 latency limit (ms); unset: the gate's."""
    p99_below_ms: float | None = Field(default=None, gt=0)
    """p99 latency limit (ms); unset: the gate's."""
    min_requests: int | None = Field(default=None, ge=1)
    """Fewest requests judged; unset: the gate's."""


class PerfGateConfig(GateConfig):
    """A gate that load-tests a running service with Locust and judges every endpoint."""

    kind: Literal["perf"] = KIND
    host: str
    """Base URL of the service under test (Locust --host), e.g. 'http://127.0.0.1:18080'."""
    locustfile: str | None = Field(
        default=None,
        description="Locust file (relative to the rootdir). Unset: the first of "
        + ", ".join(DEFAULT_LOCUSTFILES)
        + " that exists.",
    )
    users: int = Field(default=10, ge=1)
    """Concurrent Locust users (-u)."""
    spawn_rate: float | None = Field(default=None, gt=0)
    """Users started per second (-r). Unset: all at once."""
    duration: PositiveDuration = 30.0
    """How long the load runs (Locust --run-time), e.g. '30s'."""
    error_rate_below: float = Field(default=0.01, gt=0, le=1)
    """An endpoint passes only when its share of failed requests is below this."""
    p50_below_ms: float | None = Field(default=None, gt=0)
    """Median latency limit (ms); unset: not checked."""
    p95_below_ms: float | None = Field(default=200.0, gt=0)
    """95th percentile latency limit (ms); unset: not checked."""
    p99_below_ms: float | None = Field(default=None, gt=0)
    """99th percentile latency limit (ms); unset: not checked."""
    min_requests: int = Field(default=20, ge=1)
    """Fewer requests than this for an endpoint is insufficient evidence: its item fails (raise
    duration or users)."""
    endpoints: dict[str, EndpointLimits] = Field(default_factory=dict)
    """Per-endpoint overrides keyed by '<METHOD> <Locust name>', e.g. { 'GET /api/products' = {
    p95_below_ms = 300 } }. Each listed endpoint gets an item."""
    locust: str | None = None
    """Locust executable (path relative to the rootdir, or a name on PATH). Default: locust next to
    the running Python, then on PATH."""
    timeout: PositiveDuration = 120.0
    """Seconds Locust may run beyond duration before it is killed."""
    args: tuple[str, ...] = ()
    """Further Locust command-line flags."""

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must be an http(s) base URL such as 'http://127.0.0.1:8080', got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: dict[str, EndpointLimits]) -> dict[str, EndpointLimits]:
        for key in value:
            method, _, name = key.partition(" ")
            if not method or not name.strip() or method != method.upper():
                raise ValueError(
                    f"endpoint key {key!r} must be '<METHOD> <Locust name>', "
                    "e.g. 'GET /api/products'"
                )
        return value

    @field_validator("args")
    @classmethod
    def _args(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refuse_reserved_flags("Locust", value, _RESERVED_FLAGS, {})
        return value

    @model_validator(mode="after")
    def _paths(self) -> PerfGateConfig:
        refuse_empty_paths(self, ("locustfile", "locust"))
        return self

    def limits(self, endpoint: str) -> Limits:
        """The limits that apply to ``endpoint`` (overrides over the gate's)."""
        override = self.endpoints.get(endpoint, EndpointLimits())

        def pick(key: str) -> float | None:
            value: float | None = getattr(override, key)
            if value is None:
                value = getattr(self, key)
            return value

        return Limits(
            error_rate_below=float(pick("error_rate_below") or self.error_rate_below),
            p50_below_ms=pick("p50_below_ms"),
            p95_below_ms=pick("p95_below_ms"),
            p99_below_ms=pick("p99_below_ms"),
            min_requests=int(pick("min_requests") or self.min_requests),
        )


@dataclass(frozen=True)
class Limits:
    """The limits in force for one endpoint."""

    error_rate_below: float
    p50_below_ms: float | None
    p95_below_ms: float | None
    p99_below_ms: float | None
    min_requests: int

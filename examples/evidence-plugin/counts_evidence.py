"""A third-party evidence source for pytest-release: ``judge.evidence = ["counts"]``.

The service (or a sidecar, or a log shipper) reports what it served per version as JSON,
cumulative since it started::

    GET http://127.0.0.1:9100/counts
    {"stable": {"requests": 1200, "errors": 3}, "canary": {"requests": 130, "errors": 0}}

The source reads it when the hold starts (the baseline) and once every interval is over;
the differences between reads are the interval's requests and errors of each version,
which the judge tests like the router's counters (error rate and comparison with stable;
no latency).  A read that fails is kept as an error: the judge reports the ``counts``
checks as insufficient with the reason, never as a pass.

Configure it in the canary gate's judge table::

    [tool.pytest-release.gates.canary.judge]
    evidence = ["counts"]
    counts = { url = "http://127.0.0.1:9100/counts" }

Registered by the entry point ``counts = "counts_evidence:EVIDENCE"`` of the group
``pytest_release.evidence`` (pyproject.toml).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.canary.evidence.router_stats import RouterEvidence, spread
from pytest_release.canary.registry import EvidencePlugin

if TYPE_CHECKING:
    from pytest_release.canary.evidence.source import EvidenceContext
    from pytest_release.canary.samples import Sample, Target

VERSIONS: tuple[Target, ...] = ("stable", "canary")


class CountsEndpointConfig(BaseModel):
    """``judge.counts``: where the counters are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="The JSON endpoint, e.g. http://127.0.0.1:9100/counts")
    timeout: float = Field(default=2.0, gt=0, description="Seconds per read.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"must be an http(s) URL such as http://127.0.0.1:9100/counts, got {value!r}"
            )
        return value


class CountsEndpoint:
    """The source: counter differences between reads become the judge's samples."""

    def __init__(self, config: CountsEndpointConfig) -> None:
        self.config = config
        self.last: tuple[float, dict[str, tuple[int, int]]] | None = None
        self.samples: list[Sample] = []
        self.errors: list[tuple[float, str]] = []
        self.reads = 0

    def read(self) -> dict[str, tuple[int, int]]:
        with urllib.request.urlopen(self.config.url, timeout=self.config.timeout) as answer:
            body = json.loads(answer.read())
        return {v: (int(body[v]["requests"]), int(body[v]["errors"])) for v in VERSIONS}

    def start(self) -> None:
        try:
            self.last = (time.time(), self.read())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.errors.append((time.time(), f"{self.config.url}: {exc}"))

    def settle(self, start: float, end: float) -> None:
        """Read once the interval ``[start, end)`` is over: what was counted since the
        previous read belongs to it."""
        try:
            counts = self.read()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.errors.append((start, f"{self.config.url}: {exc}"))
            return
        since = start if self.last is None else max(start, self.last[0])
        if self.last is not None:
            for version in VERSIONS:
                requests = counts[version][0] - self.last[1][version][0]
                errors = counts[version][1] - self.last[1][version][1]
                if requests >= 0 and 0 <= errors <= requests:  # else: the service restarted
                    self.samples += spread(version, "counts", since, end - 1e-6, requests, errors)
        self.last = (end, counts)
        self.reads += 1

    def evidence(self, end: float) -> RouterEvidence:
        return RouterEvidence(
            samples=tuple(s for s in self.samples if s.timestamp < end),
            latencies=(),
            errors=tuple(self.errors),
            reads=self.reads,
            source="counts",
            has_latency=False,
            label=f"counts ({self.config.url})",
            latency_note="",
        )

    def stop(self) -> None:
        pass  # no thread: it reads when the hold asks


def build(table: BaseModel | None, context: EvidenceContext) -> CountsEndpoint:
    assert isinstance(table, CountsEndpointConfig)
    return CountsEndpoint(table)


EVIDENCE = EvidencePlugin(
    summary="per-version request and error counters from a JSON endpoint",
    build="counts_evidence:build",
    config=CountsEndpointConfig,
    example="judge.counts = { url = 'http://127.0.0.1:9100/counts' }",
)

"""Prometheus evidence: request and error counts (and a mean latency) per version over
each judged interval, from built-in query templates or custom PromQL.

Templates (``judge.prometheus.template``), like Flagger's ``request-success-rate`` and
``request-duration``: the queries a router offers for its own exporter in its registration
(``RouterPlugin.prometheus_queries``, :mod:`.prometheus_queries`), by its router type, so a
router plug-in brings its own.  Built in:

``haproxy``  HAProxy 2.6's built-in exporter: ``haproxy_server_http_responses_total``
             (errors: ``code="5xx"``); latency is ``haproxy_server_response_time_average_seconds``,
             HAProxy's average of the last 1024 requests (HAProxy has no histograms).
``traefik``  Traefik's ``traefik_service_requests_total`` (errors: ``code=~"5.."``);
             latency is the mean from ``traefik_service_request_duration_seconds_sum`` /
             ``_count``.
``custom``   ``requests``, ``errors`` and optionally ``latency_ms`` PromQL of your own.

Every query is formatted with ``{selector}`` (the version's label matchers: ``canary_selector``
/ ``stable_selector``; on the local HAProxy router, by default ``proxy="app",server=~"slot1|.."``
of the version's current servers) and ``{window}`` (the interval, e.g. ``2000ms``), once
``lag`` seconds after the interval's end have passed (so the scrapes after the end are in).

Results feed the judge as counts: the request and error queries are counters, evaluated at
the interval's start and end; the difference (exact: no ``increase()`` extrapolation) is the
interval's requests and errors, which become samples of the interval, judged by the same
binomial and Fisher tests as the sampler's.  What is not evidence is said, never passed:
Prometheus down or a failed query, a version with no series, and a series whose newest
sample is older than ``max_staleness`` make the interval's Prometheus checks
``insufficient`` with the reason.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from pytest_release.canary.evidence.prometheus_queries import Queries
from pytest_release.canary.evidence.router_stats import RouterEvidence, RouterLatency, spread
from pytest_release.canary.samples import Sample, Target
from pytest_release.config.types import Duration, check_http_url

if TYPE_CHECKING:
    from pytest_release.canary.evidence.source import EvidenceContext


class PrometheusEvidenceConfig(BaseModel):
    """``judge.prometheus``: where the ``prometheus`` evidence comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = ""
    """Prometheus base URL, e.g. http://127.0.0.1:9090; or give url_env."""
    url_env: str = ""
    """Environment variable holding the base URL instead of url (a CI variable such as
    PROMETHEUS_URL); unset or empty when the stage runs: every interval's Prometheus checks are
    insufficient, with the reason."""
    template: str = "haproxy"
    """The queries of a registered router's exporter, by its router type (built in: haproxy, HAProxy
    2.6's exporter; traefik, Traefik's metrics; a router plug-in may offer its own), or custom
    (requests, errors, latency_ms below)."""
    canary_selector: str = ""
    """PromQL label matchers of the canary's series, e.g. 'service=~"default-shop-canary-.*"'; empty
    on the local HAProxy router: its current canary servers."""
    stable_selector: str = ""
    """Likewise for stable."""
    requests: str = ""
    """custom: PromQL giving a version's requests so far, a counter (the interval's count is its
    value at the end minus at the start), with {selector}, e.g.
    'sum(http_requests_total{{selector}})'."""
    errors: str = ""
    """custom: a version's failed requests so far, likewise."""
    latency_ms: str = ""
    """custom: a version's mean latency in ms (optional)."""
    lag: Duration = 2.0
    """Seconds after an interval's end before querying (two scrape intervals)."""
    max_staleness: Duration = 30.0
    """A version whose newest request sample is older than this is stale: the interval is
    insufficient, not passed."""
    timeout: Duration = 5.0
    """Seconds per query request."""

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value != "custom" and value not in router_queries():
            offered = [*router_queries(), "custom"]
            raise ValueError(
                f"{value!r} is not a registered router's queries; registered: "
                f"{', '.join(repr(n) for n in offered)} (a router plug-in offers its "
                "exporter's queries in its registration, RouterPlugin.prometheus_queries)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # Empty: url_env names the variable that holds the URL.
        return check_http_url(value, "http://127.0.0.1:9090") if value else value

    @field_validator("url_env")
    @classmethod
    def _url_env(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                f"must name an environment variable such as PROMETHEUS_URL, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_url(self) -> PrometheusEvidenceConfig:
        if bool(self.url) == bool(self.url_env):
            raise ValueError(
                "give the Prometheus base URL as url = 'http://...' or name the environment "
                "variable holding it with url_env = 'PROMETHEUS_URL' (one of the two)"
            )
        return self

    def base_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The base URL: ``url``, or the value of ``url_env`` now (PrometheusError when
        that is unset, empty or not an http(s) URL)."""
        from pytest_release.canary.sampler import PrometheusError

        if self.url:
            return self.url
        value = (os.environ if environ is None else environ).get(self.url_env, "").strip()
        if not value:
            raise PrometheusError(
                f"judge.prometheus.url_env: the environment variable {self.url_env} is not set "
                "or empty, so Prometheus could not be asked (set it where the stage runs)"
            )
        if not value.startswith(("http://", "https://")):
            raise PrometheusError(
                f"judge.prometheus.url_env: {self.url_env} = {value!r} is not an http(s) URL "
                "such as https://prometheus.example.com"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _custom(self) -> PrometheusEvidenceConfig:
        if self.template == "custom" and not (self.requests and self.errors):
            raise ValueError(
                "template = 'custom' needs the requests and errors queries (PromQL with "
                "{selector}), or choose template = "
                + " or ".join(repr(name) for name in router_queries())
            )
        return self

    def queries(self) -> Queries:
        if self.template == "custom":
            return Queries(
                self.requests,
                self.errors,
                self.latency_ms or None,
                None,  # a custom query's series are not known: no staleness check
            )
        return router_queries()[self.template]


def router_queries() -> dict[str, Queries]:
    """The queries each registered router offers for its exporter, by router type."""
    from pytest_release.canary.registry import registry

    return {
        name: entry.prometheus_queries
        for name, entry in registry().routers.items()
        if entry.prometheus_queries is not None
    }


def fill(promql: str, **values: str) -> str:
    """``promql`` with ``{selector}``, ``{window}``, ``{lookback}`` replaced (other braces,
    such as PromQL's own label matchers, stay as written)."""
    for key, value in values.items():
        promql = promql.replace("{" + key + "}", value)
    return promql


def window_text(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds * 1000))}ms"


@dataclass
class PrometheusEvidence:
    """Queries Prometheus once per judged interval and accumulates the counts."""

    config: PrometheusEvidenceConfig
    selectors: Callable[[], Mapping[Target, str]]  # version -> label matchers
    _samples: list[Sample] = field(default_factory=list)
    _latencies: list[RouterLatency] = field(default_factory=list)
    _errors: list[tuple[float, str]] = field(default_factory=list)
    _reads: int = 0

    def collect(self, start: float, end: float) -> None:
        """Count the interval ``[start, end)`` (call once ``end + lag`` has passed)."""
        from pytest_release.canary.sampler import PrometheusClient, PrometheusError

        samples, latencies, errors = self._samples, self._latencies, self._errors
        try:
            client = PrometheusClient(self.config.base_url(), self.config.timeout)
        except PrometheusError as exc:
            errors.append((start, str(exc)))
            return
        queries = self.config.queries()
        window = window_text(end - start)

        lookback = window_text(self.config.max_staleness * 10)

        def one(
            target: str, name: str, promql: str, selector: str, at: float = end
        ) -> float | None:
            text = fill(promql, selector=selector, window=window, lookback=lookback)
            result = client.query(f"{target}.{name}", text, at=at)
            values = [m.value for m in result if m.value is not None]
            return None if not values or math.isnan(values[0]) else values[0]

        try:
            selectors = self.selectors()
            counted: list[tuple[Target, int, int, float | None]] = []
            for target in ("stable", "canary"):
                selector = selectors.get(target, "")
                if not selector:
                    raise PrometheusError(f"no label selector for {target}: set {target}_selector")
                if queries.freshness:
                    newest = one(target, "freshness", queries.freshness, selector)
                    if newest is None:
                        raise PrometheusError(
                            f"no {target} series: nothing matches {selector} in the last "
                            f"{lookback} (wrong selector or metric name, or never scraped)"
                        )
                    if end - newest > self.config.max_staleness:
                        raise PrometheusError(
                            f"stale {target} series: the newest sample is {end - newest:.0f} s "
                            "older than the interval's end, more than "
                            f"judge.prometheus.max_staleness = {self.config.max_staleness:g} s "
                            "(is the target still scraped?)"
                        )
                requests = one(target, "requests", queries.requests, selector)
                if requests is None:
                    promql = fill(queries.requests, selector=selector)
                    raise PrometheusError(
                        f"no {target} series: {promql} returned nothing (wrong selector or "
                        "metric name, or nothing scraped yet)"
                    )
                # Counters: the interval's count is the value at its end minus at its start
                # (a series that began in the interval counts from 0; a reset from its end).
                before = one(target, "requests", queries.requests, selector, at=start) or 0.0
                errors_end = one(target, "errors", queries.errors, selector) or 0.0
                errors_start = one(target, "errors", queries.errors, selector, at=start) or 0.0
                n = requests - before if requests >= before else requests
                k = errors_end - errors_start if errors_end >= errors_start else errors_end
                latency = (
                    one(target, "latency_ms", queries.latency_ms, selector)
                    if queries.latency_ms
                    else None
                )
                count = max(0, round(n))
                counted.append((target, count, min(count, max(0, round(k))), latency))
        except PrometheusError as exc:
            errors.append((start, str(exc)))
            return
        self._reads += 1
        for target, n, k, latency in counted:
            samples += spread(target, "prometheus", start, end - 1e-6, n, k)
            if latency is not None and n:
                latencies.append(RouterLatency((start + end) / 2.0, target, latency, n))

    def evidence(self) -> RouterEvidence:
        queries = self.config.queries()
        return RouterEvidence(
            samples=tuple(self._samples),
            latencies=tuple(self._latencies),
            errors=tuple(self._errors),
            reads=self._reads,
            source="prometheus",
            has_latency=queries.latency_ms is not None,
            label=f"prometheus ({self.config.template} queries)",
            latency_note="the mean of the window from Prometheus"
            + (
                f" ({note}; no percentiles)"
                if (note := queries.latency_note)
                else "; no percentiles"
            ),
        )


class PrometheusCounts:
    """The ``prometheus`` :class:`~pytest_release.canary.evidence.source.CountedSource`:
    each interval is counted once ``lag`` seconds after its end have passed (so the
    scrapes after the end are in)."""

    def __init__(self, counts: PrometheusEvidence, clock: Callable[[], float]) -> None:
        self.counts = counts
        self.clock = clock

    def start(self) -> None:
        pass  # counters are read at each interval's start and end: no baseline

    def settle(self, start: float, end: float) -> None:
        import time

        lag_end = end + self.counts.config.lag
        while (remaining := lag_end - self.clock()) > 0:
            time.sleep(min(0.25, remaining))
        self.counts.collect(start, end)

    def evidence(self, end: float) -> RouterEvidence:
        return self.counts.evidence()

    def stop(self) -> None:
        pass


def build(table: BaseModel | None, context: EvidenceContext) -> PrometheusCounts:
    """The source of ``judge.prometheus`` (``table``) for the hold's rollout."""
    assert isinstance(table, PrometheusEvidenceConfig)
    return PrometheusCounts(
        PrometheusEvidence(table, lambda: selectors(table, context)), context.clock
    )


def selectors(config: PrometheusEvidenceConfig, context: EvidenceContext) -> dict[Target, str]:
    """Each version's PromQL label matchers: configured, or (queries of the router's own
    exporter, ``template`` = the router's type) what the router's registration reads from
    it (``RouterPlugin.metric_selectors``: HAProxy, the version's current servers)."""
    configured: dict[Target, str] = {
        "stable": config.stable_selector,
        "canary": config.canary_selector,
    }
    router = getattr(context.rollout, "router", None)
    router_type = context.settings.router.type
    if all(configured.values()) or config.template != router_type or router is None:
        return configured
    import importlib

    from pytest_release.canary.registry import registry

    entry = registry().routers.get(router_type)
    if entry is None or not entry.metric_selectors:
        return configured
    module, _, function = entry.metric_selectors.partition(":")
    read: Callable[[object], Mapping[Target, str]] = getattr(
        importlib.import_module(module), function
    )
    found = read(router)
    return {target: configured[target] or found.get(target, "") for target in configured}

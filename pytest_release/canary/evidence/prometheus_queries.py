"""The PromQL a router's exporter answers: what ``judge.prometheus.template`` = the
router's type queries.  A router offers them in its registration
(``RouterPlugin.prometheus_queries``), so a plug-in router brings its own and
:mod:`.prometheus` names no router."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Queries:
    """A version's counters and latency as PromQL with ``{selector}`` (the version's label
    matchers), ``{window}`` (the interval) and ``{lookback}`` (for ``freshness``)."""

    requests: str  # a counter: requests so far
    errors: str  # a counter: failed requests so far
    latency_ms: str | None  # mean latency in ms over the window, or None
    freshness: str | None  # newest sample time of the version's series within {lookback}
    # What the latency is, where it is not a plain mean (the judge's latency note says it).
    latency_note: str = ""

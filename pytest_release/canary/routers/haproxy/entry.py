"""HAProxy as it registers (entry point ``haproxy`` of ``pytest_release.routers``): the
default router."""

from __future__ import annotations

from pytest_release.canary.evidence.prometheus_queries import Queries
from pytest_release.canary.registry import RouterPlugin
from pytest_release.canary.router import RouterCapabilities
from pytest_release.canary.routers.haproxy.config import HAProxyConfig

# Weights per request; per-server counters and an average response time (``show stat``);
# its servers are the replicas' endpoints.
CAPABILITIES = RouterCapabilities(counters=True, latency=True, members="replicas")
# HAProxy 2.6's built-in exporter (it has no histograms: the latency is its own average).
PROMETHEUS_QUERIES = Queries(
    requests="sum(haproxy_server_http_responses_total{{selector}})",
    errors='sum(haproxy_server_http_responses_total{{selector},code="5xx"})',
    latency_ms="1000 * avg(haproxy_server_response_time_average_seconds{{selector}})",
    freshness="max(max_over_time(timestamp(haproxy_server_http_responses_total"
    "{{selector}})[{lookback}:1s]))",
    latency_note="HAProxy's average of its last 1024 requests",
)
ROUTER = RouterPlugin(
    config=HAProxyConfig,
    summary="default, a local HAProxy; local platforms only",
    capabilities=CAPABILITIES,
    default=True,
    stats_poller="pytest_release.canary.routers.haproxy.stats:haproxy_stats_poller",
    metric_selectors="pytest_release.canary.routers.haproxy.stats:prometheus_selectors",
    prometheus_queries=PROMETHEUS_QUERIES,
)

"""Traefik as it registers (entry point ``traefik`` of ``pytest_release.routers``)."""

from __future__ import annotations

from pytest_release.canary.evidence.prometheus_queries import Queries
from pytest_release.canary.registry import RouterPlugin
from pytest_release.canary.router import RouterCapabilities
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig

# Weights over two Services, which must serve while named (Traefik refuses the whole
# TraefikService otherwise); Traefik's per-service counters come through Prometheus.
CAPABILITIES = RouterCapabilities(members="groups", idle_members=False)
# Traefik's per-service metrics; the latency is the window's mean from its histogram.
PROMETHEUS_QUERIES = Queries(
    requests="sum(traefik_service_requests_total{{selector}})",
    errors='sum(traefik_service_requests_total{{selector},code=~"5.."})',
    latency_ms="1000 * sum(rate(traefik_service_request_duration_seconds_sum"
    "{{selector}}[{window}])) / sum(rate(traefik_service_request_duration_seconds_count"
    "{{selector}}[{window}]))",
    freshness="max(max_over_time(timestamp(traefik_service_requests_total{{selector}})"
    "[{lookback}:1s]))",
)
ROUTER = RouterPlugin(
    config=TraefikRouterConfig,
    summary="a weighted TraefikService; kubernetes platform only",
    capabilities=CAPABILITIES,
    prometheus_queries=PROMETHEUS_QUERIES,
)

"""HAProxy as it registers (entry point ``haproxy`` of ``pytest_release.routers``): the
default router."""

from __future__ import annotations

from pytest_release.canary.registry import RouterPlugin
from pytest_release.canary.router import RouterCapabilities
from pytest_release.canary.routers.haproxy.config import HAProxyConfig

# Weights per request; per-server counters and an average response time (``show stat``);
# its servers are the replicas' endpoints.
CAPABILITIES = RouterCapabilities(counters=True, latency=True, members="replicas")
ROUTER = RouterPlugin(
    config=HAProxyConfig,
    summary="default, a local HAProxy; local platforms only",
    capabilities=CAPABILITIES,
    default=True,
    stats_poller="pytest_release.canary.routers.haproxy.stats:haproxy_stats_poller",
    metric_selectors="pytest_release.canary.routers.haproxy.stats:prometheus_selectors",
)

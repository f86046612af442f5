"""Traefik as it registers (entry point ``traefik`` of ``pytest_release.routers``)."""

from __future__ import annotations

from pytest_release.canary.registry import RouterPlugin
from pytest_release.canary.router import RouterCapabilities
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig

# Weights over two Services, which must serve while named (Traefik refuses the whole
# TraefikService otherwise); Traefik's per-service counters come through Prometheus.
CAPABILITIES = RouterCapabilities(members="groups", idle_members=False)
ROUTER = RouterPlugin(
    config=TraefikRouterConfig,
    summary="a weighted TraefikService; kubernetes platform only",
    capabilities=CAPABILITIES,
)

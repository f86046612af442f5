"""Traefik as it registers (entry point ``traefik`` of ``pytest_release.routers``)."""

from __future__ import annotations

from pytest_release.canary.registry import RouterPlugin
from pytest_release.canary.router import RouterCapabilities
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig

# Weights over two Services; Traefik's per-service counters come through Prometheus.
CAPABILITIES = RouterCapabilities()
ROUTER = RouterPlugin(
    config=TraefikRouterConfig,
    summary="a weighted TraefikService; kubernetes platform only",
    capabilities=CAPABILITIES,
)

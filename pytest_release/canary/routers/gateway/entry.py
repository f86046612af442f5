"""The Gateway API router as it registers (entry point ``gateway`` of
``pytest_release.routers``)."""

from __future__ import annotations

from pytest_release.canary.registry import RouterPlugin
from pytest_release.canary.router import RouterCapabilities
from pytest_release.canary.routers.gateway.config import GatewayRouterConfig

# backendRefs weights over two Services, taken out before their pods go; no per-version
# counters of its own.
CAPABILITIES = RouterCapabilities(members="groups", idle_members=False)
ROUTER = RouterPlugin(
    config=GatewayRouterConfig,
    summary="a Gateway API HTTPRoute; kubernetes platform only",
    capabilities=CAPABILITIES,
)

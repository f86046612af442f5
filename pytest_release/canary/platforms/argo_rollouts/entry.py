"""The observing platform of Argo Rollouts as it registers (entry point ``argo-rollouts``
of ``pytest_release.platforms``)."""

from __future__ import annotations

from pytest_release.canary.platforms.argo_rollouts.config import ArgoRolloutsPlatformConfig
from pytest_release.canary.registry import PlatformPlugin

PLATFORM = PlatformPlugin(
    config=ArgoRolloutsPlatformConfig,
    build_rollout="pytest_release.canary.platforms.argo_rollouts.rollout:build_rollout",
    routers=("traefik",),
    router_hint="set router.type = 'traefik' (the TraefikService the Rollout's "
    "trafficRouting names; pytest-release only reads its weights)",
    summary="observes a Rollout Argo Rollouts drives",
    observes=True,
)

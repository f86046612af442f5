"""The Kubernetes platform as it registers (entry point ``kubernetes`` of
``pytest_release.platforms``)."""

from __future__ import annotations

from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
from pytest_release.canary.registry import PlatformPlugin

PLATFORM = PlatformPlugin(
    config=KubernetesPlatformConfig,
    build_rollout="pytest_release.canary.platforms.kubernetes.rollout:build_rollout",
    routers=("traefik", "gateway"),
    router_hint="set router.type = 'traefik' (a weighted TraefikService) or 'gateway' (a "
    "Gateway API HTTPRoute)",
    extra="kubernetes",
    ci_credentials=("kubeconfig",),
)

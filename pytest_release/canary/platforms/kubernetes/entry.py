"""The Kubernetes platform as it registers (entry point ``kubernetes`` of
``pytest_release.platforms``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
from pytest_release.canary.registry import PlatformPlugin

if TYPE_CHECKING:
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings


def build_rollout(settings: CanarySettings, rootdir: Path | None) -> Rollout:
    """Platform and router of ``settings`` over one API connection."""
    from pytest_release.canary.platforms.kubernetes.client import KubeApi, KubeApiError
    from pytest_release.canary.platforms.kubernetes.config import ServiceRouterConfig
    from pytest_release.canary.platforms.kubernetes.platform import KubernetesPlatform
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
    from pytest_release.canary.routers.gateway.router import GatewayRouter
    from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
    from pytest_release.canary.routers.traefik.router import TraefikRouter
    from pytest_release.canary.routers.weighted_services import WeightedServiceRouter
    from pytest_release.errors import PlatformError

    platform = settings.platform
    router = settings.router
    assert isinstance(platform, KubernetesPlatformConfig)
    try:
        api = KubeApi(platform, rootdir, platform.request_timeout)
    except KubeApiError as exc:
        raise PlatformError(str(exc)) from None
    drain = router.drain_delay if isinstance(router, ServiceRouterConfig) else 0.0
    kubernetes_platform = KubernetesPlatform(platform, rootdir, api, drain_delay=drain)
    kubernetes_router: WeightedServiceRouter
    if isinstance(router, TraefikRouterConfig):
        kubernetes_router = TraefikRouter(router, platform, rootdir, api)
    else:
        assert isinstance(router, GatewayRouterConfig)  # see registry.router_problem
        kubernetes_router = GatewayRouter(router, platform, rootdir, api)
    return Rollout(
        kubernetes_platform,
        kubernetes_router,
        stable_image=platform.stable_image,
        stable_replicas=platform.stable_replicas,
    )


PLATFORM = PlatformPlugin(
    config=KubernetesPlatformConfig,
    build_rollout="pytest_release.canary.platforms.kubernetes.entry:build_rollout",
    routers=("traefik", "gateway"),
    router_hint="set router.type = 'traefik' (a weighted TraefikService) or 'gateway' (a "
    "Gateway API HTTPRoute)",
    extra="kubernetes",
    ci_credentials=("kubeconfig",),
)

"""The effective settings of one canary gate (its platform, router, sampler, judge and
Slack tables after ``settings_from`` and the stage's environment), and the rollout they
build (:func:`pytest_release.canary.registry.build_rollout`).  It names every table of
the engine, so no table module imports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_release.canary.config import SamplerConfig
    from pytest_release.canary.judge import JudgeConfig
    from pytest_release.canary.platforms.argo_rollouts.config import ArgoRolloutsPlatformConfig
    from pytest_release.canary.platforms.cloud_run.config import (
        CloudRunPlatformConfig,
        CloudRunRouterConfig,
    )
    from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
    from pytest_release.canary.platforms.local.config import LocalPlatformConfig
    from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
    from pytest_release.canary.slack import SlackConfig

    PlatformConfig = (
        LocalPlatformConfig
        | KubernetesPlatformConfig
        | CloudRunPlatformConfig
        | ArgoRolloutsPlatformConfig
    )
    RouterConfig = HAProxyConfig | TraefikRouterConfig | GatewayRouterConfig | CloudRunRouterConfig


@dataclass(frozen=True)
class CanarySettings:
    """The effective settings of one canary gate (after ``settings_from``)."""

    gate: str
    platform: PlatformConfig
    router: RouterConfig
    sampler: SamplerConfig
    judge: JudgeConfig
    slack: SlackConfig | None
    rollback_on_insufficient: bool
    verify_requests: int

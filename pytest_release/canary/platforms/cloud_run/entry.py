"""Cloud Run as it registers: the platform and its own router (entry points
``cloud-run`` of ``pytest_release.platforms`` and ``pytest_release.routers``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.canary.platforms.cloud_run.config import (
    CAPABILITIES,
    CloudRunPlatformConfig,
    CloudRunRouterConfig,
)
from pytest_release.canary.registry import PlatformPlugin, RouterPlugin

if TYPE_CHECKING:
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings


def build_rollout(settings: CanarySettings, rootdir: Path | None) -> Rollout:
    """The platform of ``settings`` and its service's traffic split."""
    from pytest_release.canary.platforms.cloud_run.platform import CloudRunPlatform
    from pytest_release.canary.platforms.cloud_run.router import CloudRunRouter
    from pytest_release.canary.rollout import Rollout

    assert isinstance(settings.platform, CloudRunPlatformConfig)
    router = settings.router
    assert isinstance(router, CloudRunRouterConfig)  # see registry.router_problem
    platform = CloudRunPlatform(settings.platform)
    return Rollout(platform, CloudRunRouter(platform, router))


PLATFORM = PlatformPlugin(
    config=CloudRunPlatformConfig,
    build_rollout="pytest_release.canary.platforms.cloud_run.entry:build_rollout",
    routers=("cloud-run",),
    router_hint="set router.type = 'cloud-run' (the service splits traffic between its revisions)",
    extra="cloud-run",
    ci_credentials=("google",),
)
ROUTER = RouterPlugin(
    config=CloudRunRouterConfig,
    summary="the Cloud Run service's own split; cloud-run platform only",
    capabilities=CAPABILITIES,
)

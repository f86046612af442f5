"""The local platform as it registers (entry points ``local-process`` and
``local-docker`` of ``pytest_release.platforms``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.registry import PlatformPlugin

if TYPE_CHECKING:
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings


def build_rollout(settings: CanarySettings, rootdir: Path) -> Rollout:
    """The local platform of ``settings`` behind its HAProxy router."""
    from pytest_release.canary.platforms.local.platform import LocalPlatform
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.canary.routers.haproxy.router import HAProxyRouter

    assert isinstance(settings.platform, LocalPlatformConfig)
    assert isinstance(settings.router, HAProxyConfig)  # see registry.router_problem
    platform = LocalPlatform(settings.platform, rootdir)
    router = HAProxyRouter(settings.router, platform.state_dir)
    return Rollout(
        platform,
        router,
        stable_image=settings.platform.stable_image,
        stable_replicas=settings.platform.stable_replicas,
    )


PLATFORM = PlatformPlugin(
    config=LocalPlatformConfig,
    build_rollout="pytest_release.canary.platforms.local.entry:build_rollout",
    routers=("haproxy",),
    router_hint="set router.type = 'haproxy' (the default) or leave the router table out",
    lease_watch="pytest_release.canary.platforms.local.lease_watch:watch_lease",
    teardown="pytest_release.canary.platforms.local.teardown:end_kept",
    state_files=("platform.json", "haproxy"),
)

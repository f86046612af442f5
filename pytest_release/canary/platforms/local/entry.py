"""The local platform as it registers (entry points ``local-process`` and
``local-docker`` of ``pytest_release.platforms``)."""

from __future__ import annotations

from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.registry import PlatformPlugin

PLATFORM = PlatformPlugin(
    config=LocalPlatformConfig,
    build_rollout="pytest_release.canary.platforms.local.rollout:build_rollout",
    routers=("haproxy",),
    router_hint="set router.type = 'haproxy' (the default) or leave the router table out",
    lease_watch="pytest_release.canary.platforms.local.lease_watch:watch_lease",
    teardown="pytest_release.canary.platforms.local.teardown:end_kept",
    state_files=("platform.json", "haproxy"),
)

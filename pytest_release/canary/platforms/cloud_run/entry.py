"""Cloud Run as it registers: the platform and its own router (entry points
``cloud-run`` of ``pytest_release.platforms`` and ``pytest_release.routers``)."""

from __future__ import annotations

from pytest_release.canary.platforms.cloud_run.config import (
    CloudRunPlatformConfig,
    CloudRunRouterConfig,
)
from pytest_release.canary.registry import PlatformPlugin, RouterPlugin
from pytest_release.canary.router import RouterCapabilities

PLATFORM = PlatformPlugin(
    config=CloudRunPlatformConfig,
    build_rollout="pytest_release.canary.platforms.cloud_run.rollout:build_rollout",
    routers=("cloud-run",),
    router_hint="set router.type = 'cloud-run' (the service splits traffic between its revisions)",
    extra="cloud-run",
    ci_credentials=("google",),
)
# Percent weights per revision; no per-revision counters are read.
CAPABILITIES = RouterCapabilities()
ROUTER = RouterPlugin(
    config=CloudRunRouterConfig,
    summary="the Cloud Run service's own split; cloud-run platform only",
    capabilities=CAPABILITIES,
)

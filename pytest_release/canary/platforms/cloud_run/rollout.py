"""Rollout steps on Cloud Run: the canary gate's steps over a
:class:`~.platform.CloudRunPlatform` and the service's own traffic split
(:class:`~.router.CloudRunRouter`).

A new revision never takes traffic by itself (the traffic is pinned to revisions), so
the order is simple: the canary revision is created at 0 % and becomes ready, the split
moves by percent (read back from ``traffic_statuses``), a promotion moves the main tag
to the canary revision at 100 %, and a rollback sends 100 % back to the main (or the
previous) revision and deletes the canary revision.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.canary.end_state import verify_main
from pytest_release.canary.platform import PlatformStatus
from pytest_release.canary.platforms.cloud_run.platform import CloudRunPlatform
from pytest_release.canary.platforms.cloud_run.router import CloudRunRouter
from pytest_release.canary.rollout import NO_BASELINE, ErrorBaseline, MainCheck, previous_for
from pytest_release.canary.router import Weights
from pytest_release.canary.sampler import Targets
from pytest_release.errors import RolloutError

if TYPE_CHECKING:
    from pytest_release.canary.settings import CanarySettings


def build_rollout(settings: CanarySettings, rootdir: Path | None) -> CloudRunRollout:
    """The platform of ``settings`` and its service's traffic split."""
    from pytest_release.canary.platforms.cloud_run.config import (
        CloudRunPlatformConfig,
        CloudRunRouterConfig,
    )

    assert isinstance(settings.platform, CloudRunPlatformConfig)
    router = settings.router
    assert isinstance(router, CloudRunRouterConfig)  # see registry.router_problem
    platform = CloudRunPlatform(settings.platform)
    return CloudRunRollout(platform, CloudRunRouter(platform, router))


class CloudRunRollout:
    """:class:`pytest_release.canary.rollout.Rollout` on Cloud Run."""

    def __init__(self, platform: CloudRunPlatform, router: CloudRunRouter) -> None:
        self.platform = platform
        self.router = router

    def ensure_main(self) -> PlatformStatus:
        """The service's serving revision is the tagged main revision."""
        return self.platform.adopt_main()

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        self.ensure_main()
        return self.platform.deploy_canary(image, replicas)

    def shift(self, canary_percent: int) -> Weights:
        return self.router.set_weights(stable=100 - canary_percent, canary=canary_percent)

    def promote(self, image: str, replicas: int, *, record_previous: bool = True) -> Weights:
        """Main revision := a revision of ``image`` with min instances ``replicas`` at
        100 %; the old main keeps the previous tag; no canary tag remains."""
        status = self.platform.status()
        if status.canary_image != image or len(status.group("canary")) != replicas:
            self.deploy_canary(image, replicas)
        self.shift(100)
        self.platform.promote(record_previous=record_previous)
        return self.router.weights()

    def rollback_traffic(self) -> Weights:
        """100 % of the traffic to the main revision (read back)."""
        status = self.platform.status()
        if status.stable_image is None:
            raise RolloutError(
                f"cannot send all traffic to the main revision: {self.platform.name} has none "
                f"({status.describe()})"
            )
        self.ensure_main()
        return self.router.set_weights(stable=100, canary=0)

    def remove_canary(self) -> PlatformStatus:
        return self.platform.rollback()

    def restore_main(self, image: str) -> PlatformStatus:
        return self.platform.restore_main(image)

    def rollback(self, release_image: str | None) -> PlatformStatus:
        """Traffic to main, canary removed, and the main back on the previous revision
        when it was promoted to ``release_image``."""
        status = self.platform.status()
        if status.group("stable"):
            self.rollback_traffic()
        status = self.remove_canary()
        target = self.previous_for(status, release_image)
        if target is not None:
            status = self.restore_main(target)
        return status

    previous_for = staticmethod(previous_for)

    def targets(self) -> Targets:
        """The service URL, and each revision's tag URL, when they are plain HTTP (an
        emulator, a proxy); the sampler's direct requests and health probes speak HTTP
        only, so on run.app URLs (HTTPS) only the load through the service URL is sent."""
        status = self.platform.status()
        url = self.router.url
        names = {r.endpoint: r.name.split("#")[0] for r in status.replicas}
        plain = url.startswith("http://")
        return Targets(
            router_url=url or None,
            stable=tuple(dict.fromkeys(status.endpoints("stable"))) if plain else (),
            canary=tuple(dict.fromkeys(status.endpoints("canary"))) if plain else (),
            names=names,
        )

    def verify_main(
        self,
        image: str | None,
        replicas: int | None,
        requests: int,
        baseline: ErrorBaseline = NO_BASELINE,
    ) -> MainCheck:
        """See :func:`pytest_release.canary.end_state.verify_main`."""
        return verify_main(self, image, replicas, requests, baseline)

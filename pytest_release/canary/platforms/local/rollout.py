"""Rollout steps over the local platform and HAProxy, in an order that drops no request.

The platform starts and stops replicas; the router decides who gets traffic.  Every step
here changes one of them at a time so that each request always has a ready replica:
replicas join the router only once ready, leave it (weight 0, drained) before they stop,
and the promotion or restoration of the main deployment goes through the canary group
(start new replicas, shift 100 %, drain the old ones, relabel).  Each step returns what
it reads back, and :meth:`Rollout.verify_main` checks the end state end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.canary.end_state import verify_main
from pytest_release.canary.platform import Platform, PlatformStatus
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.rollout import (
    NO_BASELINE,
    ErrorBaseline,
    MainCheck,
    previous_for,
)
from pytest_release.canary.router import Weights
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.sampler import Targets
from pytest_release.errors import RolloutError

if TYPE_CHECKING:
    from pytest_release.canary.settings import CanarySettings


def build_rollout(settings: CanarySettings, rootdir: Path) -> LocalRollout:
    """The local platform of ``settings`` behind its HAProxy router."""
    from pytest_release.canary.platforms.local.config import LocalPlatformConfig
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig

    assert isinstance(settings.platform, LocalPlatformConfig)
    assert isinstance(settings.router, HAProxyConfig)  # see registry.router_problem
    platform = LocalPlatform(settings.platform, rootdir)
    router = HAProxyRouter(settings.router, platform.state_dir)
    return LocalRollout(
        platform,
        router,
        stable_image=settings.platform.stable_image,
        stable_replicas=settings.platform.stable_replicas,
    )


class LocalRollout:
    """:class:`pytest_release.canary.rollout.Rollout` of any platform whose replicas are
    endpoints this machine reaches (the local platform, or a plug-in's such as
    ``examples/platform-plugin``) behind HAProxy: the router's members are the replicas'
    endpoints."""

    def __init__(
        self,
        platform: Platform,
        router: HAProxyRouter,
        *,
        stable_image: str | None,
        stable_replicas: int,
    ) -> None:
        self.platform = platform
        self.router = router
        self.stable_image = stable_image
        self.stable_replicas = stable_replicas

    # -- helpers -------------------------------------------------------------------------
    def _sync_members(self, status: PlatformStatus) -> Weights:
        """Make the router's groups match the platform's ready replicas."""
        stable = list(status.endpoints("stable"))
        canary = list(status.endpoints("canary"))
        current = self.router.weights()
        if set(current.stable_members) == set(stable) and set(current.canary_members) == set(
            canary
        ):
            return current
        split = None
        if not canary and current.canary:
            split = (100, 0)
        if not stable and current.stable:
            split = (0, 100)
        return self.router.set_members(stable=stable, canary=canary, split=split)

    def ensure_main(self) -> PlatformStatus:
        """The main deployment runs (bootstrapped from ``stable_image`` on a fresh
        platform) and the router sends it traffic."""
        self.router.start()
        status = self.platform.status()
        if not status.group("stable"):
            if not self.stable_image:
                raise RolloutError(
                    f"no main deployment runs on {self.platform.name} and there is nothing to "
                    "compare the canary with; set platform.stable_image (the version running "
                    "in production now) so the first stage can start it"
                )
            status = self.platform.deploy_stable(self.stable_image, self.stable_replicas)
        self._sync_members(status)
        return status

    # -- canary ----------------------------------------------------------------------------
    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        status = self.ensure_main()
        current = status.endpoints("canary")
        if status.canary_image == image and len(current) > replicas:
            # Scale down: route away from the replicas that go before they stop.
            weights = self.router.weights()
            self.router.set_members(
                stable=status.endpoints("stable"),
                canary=current[:replicas],
                split=(weights.stable, weights.canary),
            )
        status = self.platform.deploy_canary(image, replicas)
        self._sync_members(status)
        return status

    def shift(self, canary_percent: int) -> Weights:
        return self.router.set_weights(stable=100 - canary_percent, canary=canary_percent)

    def promote(self, image: str, replicas: int, *, record_previous: bool = True) -> Weights:
        """Main deployment := ``replicas`` replicas of ``image``, 100 % of the traffic;
        the old main replicas are drained and stopped, the canary group is empty."""
        self.deploy_canary(image, replicas)
        self.shift(100)
        status = self.platform.status()
        # Drain the old main: it gets no traffic any more, then leaves the router.
        self.router.set_members(stable=[], canary=status.endpoints("canary"), split=(0, 100))
        status = self.platform.promote(record_previous=record_previous)
        return self.router.set_members(stable=status.endpoints("stable"), canary=[], split=(100, 0))

    # -- rollback --------------------------------------------------------------------------
    def rollback_traffic(self) -> Weights:
        """100 % of the traffic to the main deployment (read back)."""
        self.router.start()
        status = self.platform.status()
        if not status.group("stable"):
            raise RolloutError(
                "cannot send all traffic to the main deployment: it has no replica "
                f"({status.describe()})"
            )
        self._sync_members(status)
        return self.router.set_weights(stable=100, canary=0)

    def remove_canary(self) -> PlatformStatus:
        """The canary replicas leave the router (drained) and stop."""
        status = self.platform.status()
        if status.group("canary"):
            self.router.set_members(stable=status.endpoints("stable"), canary=[], split=(100, 0))
        return self.platform.rollback()

    def restore_main(self, image: str) -> PlatformStatus:
        """Main deployment back on ``image`` (same replica count) if it runs another one."""
        status = self.platform.status()
        if status.stable_image == image:
            return status
        replicas = max(1, len(status.group("stable")))
        if status.group("canary"):
            self.remove_canary()
        self.promote(image, replicas, record_previous=False)
        return self.platform.status()

    def rollback(self, release_image: str | None) -> PlatformStatus:
        """Everything a rollback does: traffic to main, canary removed, and when the main
        deployment was promoted to ``release_image``, back to the previous version."""
        status = self.platform.status()
        if status.group("canary") and status.group("stable"):
            self.rollback_traffic()
        status = self.remove_canary()
        target = self.previous_for(status, release_image)
        if target is not None:
            status = self.restore_main(target)
        return status

    previous_for = staticmethod(previous_for)

    def targets(self) -> Targets:
        """Every replica is reachable on 127.0.0.1, and so is the router."""
        status = self.platform.status()
        names = {r.endpoint: r.name for r in status.replicas}
        for server, endpoint in self.router.server_endpoints().items():
            if endpoint in names:
                names[server] = names[endpoint]
        return Targets(
            router_url=self.router.url,
            stable=status.endpoints("stable"),
            canary=status.endpoints("canary"),
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

"""Rollout steps on Kubernetes: the canary gate's steps over a
:class:`~.platform.KubernetesPlatform` and a Traefik or Gateway API router, in an order
that keeps a ready backend behind every weight.

It offers the methods of :class:`pytest_release.canary.rollout.Rollout` that the canary
gate calls.  The differences are Kubernetes': members are Services, not endpoints, and a
promotion updates the main Deployment in place (rolling update to the release image,
scaled to the stage's replicas) while the canary Service takes 100 % of the traffic, then
returns the traffic to the main Service and deletes the canary resources.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.canary.end_state import verify_main
from pytest_release.canary.platform import PlatformStatus
from pytest_release.canary.platforms.kubernetes.client import KubeApi, KubeApiError
from pytest_release.canary.platforms.kubernetes.config import (
    KubernetesPlatformConfig,
    ServiceRouterConfig,
)
from pytest_release.canary.platforms.kubernetes.platform import KubernetesPlatform
from pytest_release.canary.rollout import (
    NO_BASELINE,
    ErrorBaseline,
    MainCheck,
    previous_for,
)
from pytest_release.canary.router import Weights
from pytest_release.canary.routers.weighted_services import WeightedServiceRouter
from pytest_release.canary.sampler import Targets
from pytest_release.errors import PlatformError, RolloutError, RouterError

if TYPE_CHECKING:
    from pytest_release.canary.settings import CanarySettings


class KubernetesRollout:
    def __init__(
        self,
        platform: KubernetesPlatform,
        router: WeightedServiceRouter,
        *,
        stable_image: str | None,
        stable_replicas: int,
    ) -> None:
        self.platform = platform
        self.router = router
        self.stable_image = stable_image
        self.stable_replicas = stable_replicas

    @property
    def main_service(self) -> str:
        return self.router.stable_service

    @property
    def canary_service(self) -> str:
        return self.router.canary_service

    # -- main --------------------------------------------------------------------------------
    def ensure_main(self) -> PlatformStatus:
        """The main Deployment runs (created from ``stable_image`` on a fresh namespace) and
        the router object exists."""
        status = self.platform.status()
        if status.stable_image is None:
            if not self.stable_image:
                raise RolloutError(
                    f"no main Deployment '{self.platform.main_name}' runs on "
                    f"{self.platform.name} and there is nothing to compare the canary with; "
                    "set platform.stable_image (the version running in production now) so the "
                    "first stage creates it"
                )
            status = self.platform.deploy_stable(self.stable_image, self.stable_replicas)
            self.wait_endpoints(self.main_service, len(status.group("stable")))
        self.router.start()
        return status

    def wait_endpoints(self, service: str, count: int) -> None:
        """Wait until ``service`` has ``count`` ready endpoints (the endpoint controller
        follows pod readiness with a delay; routers refuse Services without endpoints)."""
        timeout = self.platform.config.rollout_timeout
        deadline = time.monotonic() + timeout
        while (ready := self.router.ready_endpoints(service)) < count:
            if time.monotonic() > deadline:
                raise RolloutError(
                    f"Service '{service}' in namespace '{self.platform.namespace}' has {ready} "
                    f"ready endpoint(s) {timeout:g}s after its {count} pod(s) became ready: "
                    "check that the Service's selector and ports match the pods"
                )
            time.sleep(0.2)

    # -- canary ------------------------------------------------------------------------------
    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        self.ensure_main()
        status = self.platform.deploy_canary(image, replicas)
        self.wait_endpoints(self.canary_service, replicas)
        # The canary Service joins the router at its current share (0 % when it is new).
        self.router.set_members(stable=[self.main_service], canary=[self.canary_service])
        return status

    def shift(self, canary_percent: int) -> Weights:
        return self.router.set_weights(stable=100 - canary_percent, canary=canary_percent)

    def promote(self, image: str, replicas: int, *, record_previous: bool = True) -> Weights:
        """Main Deployment := ``replicas`` replicas of ``image``; meanwhile the canary Service
        serves 100 %; then 100 % back to the main Service and the canary removed."""
        status = self.platform.status()
        if status.canary_image != image or not status.group("canary"):
            self.deploy_canary(image, replicas)
        self.shift(100)
        self.platform.update_main(image, replicas, record_previous=record_previous)
        self.wait_endpoints(self.main_service, replicas)
        self.router.set_members(stable=[self.main_service], canary=[], split=(100, 0))
        self.drain()
        self.platform.rollback()
        return self.router.weights()

    # -- rollback ----------------------------------------------------------------------------
    def rollback_traffic(self) -> Weights:
        """100 % of the traffic to the main Service (read back)."""
        status = self.platform.status()
        if status.stable_image is None or not status.group("stable"):
            raise RolloutError(
                "cannot send all traffic to the main Deployment: it has no pod "
                f"({status.describe()})"
            )
        self.router.start()
        # Not weight 0: Traefik refuses the whole TraefikService (404 for every request)
        # once a Service it names has no serving endpoint, as a canary about to go has not.
        return self.router.release_canary()

    def remove_canary(self) -> PlatformStatus:
        """The canary Service leaves the router, then (after ``router.drain_delay``, when
        it had canary pods or the router still named the canary Service) the canary
        resources are deleted.  The router applies changes asynchronously: a routing
        object that still names a deleted Service is invalid (Traefik then answers 404 for
        the whole route), so the Service goes only once the router has let go of it — also
        when a dead man's switch already scaled the canary to 0 pods."""
        had_canary = bool(self.platform.status().group("canary"))
        try:
            routed_canary = bool(self.router.weights().canary_members)
        except RouterError:  # unreadable (e.g. every weight 0): drain to be safe
            routed_canary = True
        self.router.set_members(stable=[self.main_service], canary=[], split=(100, 0))
        if had_canary or routed_canary:
            self.drain()
        return self.platform.rollback()

    def drain(self) -> None:
        """Requests the router still sends to the canary (it applies changes
        asynchronously) reach live pods: wait until the router reports the change applied
        (Traefik with ``router.api_url``), else ``router.drain_delay``."""
        if not self.router.wait_applied():
            time.sleep(self.router.config.drain_delay)

    def restore_main(self, image: str) -> PlatformStatus:
        """Main Deployment back on ``image`` (its ReplicaSet revision), verified."""
        status = self.platform.status()
        if status.stable_image == image:
            return status
        if status.group("canary") or status.canary_image:
            self.remove_canary()
        status = self.platform.restore_main(image)
        self.wait_endpoints(self.main_service, len(status.group("stable")))
        return status

    def rollback(self, release_image: str | None) -> PlatformStatus:
        """Traffic to main, canary removed, and the main Deployment back on the previous
        image when it was promoted to ``release_image``."""
        status = self.platform.status()
        if status.group("stable"):
            self.rollback_traffic()
        status = self.remove_canary()
        target = self.previous_for(status, release_image)
        if target is not None:
            status = self.restore_main(target)
        return status

    previous_for = staticmethod(previous_for)

    @property
    def samples_pods(self) -> bool:
        """Pods and the router are reachable from this process (``platform.sample_pods``)."""
        return self.platform.config.sample_pods

    def targets(self) -> Targets:
        """With ``platform.sample_pods``: every pod at ``podIP:container_port`` and the
        router at ``router.url``.  Otherwise pod IPs are the cluster's network, not this
        machine's: the hold judges pod status (restarts, readiness) only."""
        status = self.platform.status()
        names = {r.endpoint: r.name for r in status.replicas}
        if not self.samples_pods:
            return Targets(router_url=None, stable=(), canary=(), names=names)
        return Targets(
            router_url=self.router.url or None,
            stable=tuple(e for e in status.endpoints("stable") if not e.startswith("-:")),
            canary=tuple(e for e in status.endpoints("canary") if not e.startswith("-:")),
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


def build_rollout(settings: CanarySettings, rootdir: Path | None) -> KubernetesRollout:
    """Platform and router of ``settings`` over one API connection."""
    from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
    from pytest_release.canary.routers.gateway.router import GatewayRouter
    from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
    from pytest_release.canary.routers.traefik.router import TraefikRouter

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
    return KubernetesRollout(
        kubernetes_platform,
        kubernetes_router,
        stable_image=platform.stable_image,
        stable_replicas=platform.stable_replicas,
    )

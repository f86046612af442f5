"""The observing rollout of a stage whose canary Argo Rollouts drives
(:class:`~pytest_release.canary.observing.ObservingRollout`): the stage checks that the
controller runs its step (the canary is the release id, at the stage's weight, with ready
pods), then judges; it never deploys, shifts, promotes or rolls back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_release.canary.platform import PlatformStatus
from pytest_release.canary.platforms.argo_rollouts.config import ArgoRolloutsPlatformConfig
from pytest_release.canary.platforms.argo_rollouts.observe import ObservedRollout, RolloutObserver
from pytest_release.canary.platforms.argo_rollouts.platform import ObservedRolloutPlatform
from pytest_release.canary.platforms.argo_rollouts.router import ObservedTraefikRouter
from pytest_release.canary.platforms.kubernetes.client import KubeApi, KubeApiError
from pytest_release.canary.rollout import MainCheck, Rollout
from pytest_release.canary.router import Weights
from pytest_release.canary.sampler import Targets
from pytest_release.errors import PlatformError, RolloutError

if TYPE_CHECKING:
    from pytest_release.canary.settings import CanarySettings

POLL_SECONDS = 0.5


class ArgoObservingRollout(Rollout):
    """Reads one Rollout, its pods and its TraefikService; every step that would write
    (the :class:`Rollout`'s own) raises: the controller acts, not the stage."""

    def __init__(
        self,
        config: ArgoRolloutsPlatformConfig,
        platform: ObservedRolloutPlatform,
        router: ObservedTraefikRouter,
        observer: RolloutObserver,
    ) -> None:
        super().__init__(platform, router)
        self.config = config
        self.platform: ObservedRolloutPlatform = platform
        self.router: ObservedTraefikRouter = router
        self.observer = observer

    @property
    def controller(self) -> str:
        return self.platform.name

    # -- observing ---------------------------------------------------------------------------
    def _problem(
        self, seen: ObservedRollout, status: PlatformStatus | None, weight: int, release: str
    ) -> str | None:
        """Why the controller does not (yet) run the stage's step, or None."""
        if seen.canary_hash is None:
            return f"the Rollout has no canary (it is {seen.action})"
        if seen.canary_hash != release:
            return (
                f"the Rollout's canary is pod-template hash {seen.canary_hash!r}, but the stage "
                f"runs for release {release!r}: run it with --release-id={seen.canary_hash} "
                "(the generated analysis passes the canary's hash)"
            )
        found = seen.router_weights
        if found is None or found.canary != weight:
            return (
                f"the stage expects canary {weight}% but the controller set "
                f"{found if found is not None else 'no TraefikService weights'} (Rollout step "
                f"{seen.step_index}/{seen.step_count}): the stage runs at the wrong step of "
                "the Rollout"
            )
        if seen.status_weights is not None and seen.status_weights[1] != weight:
            return (
                f"the Rollout's status says canary {seen.status_weights[1]}%, its "
                f"TraefikService {found}: the controller is changing the weights"
            )
        if status is not None:
            if not status.group("canary"):
                return f"no pod of the canary {seen.canary_hash} runs"
            if status.not_ready("canary"):
                return f"canary pods are not ready: {status.describe()}"
        return None

    def observe_step(self, weight: int, release_id: str) -> list[tuple[str, str]]:
        timeout = self.config.observe_timeout
        deadline = time.monotonic() + timeout
        while True:
            seen = self.observer.observe()
            if seen.action == "aborted":
                raise RolloutError(
                    f"{seen.describe()}: the controller aborted the rollout, there is no "
                    f"canary at {weight}% to judge"
                )
            problem = self._problem(seen, None, weight, release_id)
            status = None
            if problem is None:
                status = self.platform.status()
                problem = self._problem(seen, status, weight, release_id)
            if problem is None:
                break
            if time.monotonic() > deadline:
                raise RolloutError(
                    f"{problem}; waited {timeout:g} s (platform.observe_timeout) for the "
                    f"controller; last reading: {seen.describe()}"
                )
            time.sleep(POLL_SECONDS)
        assert status is not None
        assert seen.router_weights is not None
        return [
            ("controller.rollout", f"{seen.namespace}/{seen.name}"),
            ("controller.phase", seen.phase),
            ("controller.step", f"{seen.step_index}/{seen.step_count}"),
            ("canary.hash", str(seen.canary_hash)),
            ("stable.hash", str(seen.stable_hash)),
            ("canary.image", str(status.canary_image)),
            ("canary.replicas", str(len(status.group("canary")))),
            ("main.image", str(status.stable_image)),
            ("main.replicas", str(len(status.group("stable")))),
            ("router.stable_percent", str(seen.router_weights.stable)),
            ("router.canary_percent", str(seen.router_weights.canary)),
        ]

    def controller_record(self) -> dict[str, Any]:
        return self.observer.observe().to_record()

    def targets(self) -> Targets:
        """As on the Kubernetes platform: with ``platform.sample_pods`` every pod and the
        router's url; otherwise pod status only."""
        status = self.platform.status()
        names = {r.endpoint: r.name for r in status.replicas}
        if not self.config.sample_pods:
            return Targets(router_url=None, stable=(), canary=(), names=names)
        return Targets(
            router_url=self.router.url or None,
            stable=tuple(e for e in status.endpoints("stable") if not e.startswith("-:")),
            canary=tuple(e for e in status.endpoints("canary") if not e.startswith("-:")),
            names=names,
        )

    # -- what the controller does ----------------------------------------------------------
    def _refuse(self, what: str) -> NoReturn:
        raise RolloutError(
            f"{what} is the Argo Rollouts controller's ({self.controller} is observed by "
            "platform.type = 'argo-rollouts'): pytest-release only reads and judges"
        )

    def ensure_main(self) -> PlatformStatus:
        return self.platform.status()

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        self._refuse("deploying the canary")

    def shift(self, canary_percent: int) -> Weights:
        self._refuse("setting the weights")

    def promote(self, image: str, replicas: int, *, record_previous: bool = True) -> Weights:
        self._refuse("promoting")

    def rollback_traffic(self) -> Weights:
        self._refuse("rolling the traffic back")

    def remove_canary(self) -> PlatformStatus:
        self._refuse("removing the canary")

    def restore_main(self, image: str) -> PlatformStatus:
        self._refuse("restoring the stable version")

    def rollback(self, release_image: str | None) -> PlatformStatus:
        self._refuse("rolling back")

    def previous_for(self, status: PlatformStatus, release_image: str | None) -> str | None:
        return None  # the controller keeps the revisions

    def verify_main(self, *args: object, **kwargs: object) -> MainCheck:
        # Refused whatever is asked: Rollout.verify_main's parameters are not repeated.
        self._refuse("verifying the end state of a promotion or rollback")


def build_rollout(settings: CanarySettings, rootdir: Path | None) -> ArgoObservingRollout:
    """The observing rollout of ``settings``: one API connection; the Services and the
    TraefikService are the ones the Rollout's canary strategy names."""
    from pytest_release.canary.routers.traefik.config import TraefikRouterConfig

    config = settings.platform
    router = settings.router
    assert isinstance(config, ArgoRolloutsPlatformConfig)
    assert isinstance(router, TraefikRouterConfig)  # see registry.router_problem
    try:
        api = KubeApi(config, rootdir, config.request_timeout)
    except KubeApiError as exc:
        raise PlatformError(str(exc)) from None
    platform = ObservedRolloutPlatform(config, api)
    strategy = ((platform.rollout_object().get("spec") or {}).get("strategy") or {}).get(
        "canary"
    ) or {}
    traefik = ((strategy.get("trafficRouting") or {}).get("traefik") or {}).get(
        "weightedTraefikServiceName"
    )
    where = f"the Rollout {config.namespace}/{config.rollout}"
    if not traefik or not strategy.get("stableService") or not strategy.get("canaryService"):
        raise PlatformError(
            f"{where} is not a canary with stableService, canaryService and "
            "trafficRouting.traefik.weightedTraefikServiceName: pytest-release observes "
            "Traefik-routed canaries (python -m pytest_release argo-rollouts writes one)"
        )
    if router.name is not None and router.name != traefik:
        raise PlatformError(
            f"router.name = {router.name!r}, but {where} routes through TraefikService "
            f"{traefik!r}: leave router.name unset or set it to {traefik!r}"
        )
    observer = RolloutObserver(api, config.namespace, config.rollout)
    return ArgoObservingRollout(
        config,
        platform,
        ObservedTraefikRouter(
            observer,
            traefik_service=str(traefik),
            stable_service=str(strategy["stableService"]),
            canary_service=str(strategy["canaryService"]),
            url=router.url,
        ),
        observer,
    )

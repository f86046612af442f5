"""The one ``Rollout``: canary steps, promotion and rollback over any platform and router.

A rollout drives one :class:`~pytest_release.canary.platform.Platform` and one
:class:`~pytest_release.canary.router.TrafficRouter` in an order that keeps every request
served: replicas join the router only once ready, leave it (drained) before they stop.
Where platforms and routers differ, they say so in their capabilities
(:class:`~pytest_release.canary.platform.PlatformCapabilities`,
:class:`~pytest_release.canary.router.RouterCapabilities`) and the steps follow them:

* what the router's members are (``RouterCapabilities.members``): the replicas' endpoints
  (HAProxy: they join and leave one by one), one member per group (a Service: the canary's
  joins once it has ready endpoints, leaves before it is deleted, and the rollout waits
  until the router let go), or kept by the platform (Cloud Run's tags: weights only);
* how main becomes the release (``PlatformCapabilities.updates_main_in_place``): the
  canary group becomes the main one, or the main deployment is updated in place while the
  canary carries all traffic;
* how main returns to an earlier version (``restores_main``): by the platform itself, or
  as a canary of that version, promoted.

A platform's plug-in builds its platform and router and hands them to this class
(``PlatformPlugin.build_rollout``); the end states are checked once, against the
protocols (:mod:`pytest_release.canary.end_state`).
"""

from __future__ import annotations

from pytest_release.canary.end_state import (
    NO_BASELINE,
    ErrorBaseline,
    MainCheck,
    probe_router,
    verify_main,
)
from pytest_release.canary.platform import (
    Group,
    Platform,
    PlatformStatus,
    RestoresMain,
    UpdatesMainInPlace,
)
from pytest_release.canary.router import TrafficRouter, Weights
from pytest_release.canary.sampler import Targets
from pytest_release.errors import RolloutError, RouterError

__all__ = [
    "NO_BASELINE",
    "ErrorBaseline",
    "MainCheck",
    "Rollout",
    "RolloutError",
    "previous_for",
    "probe_router",
]


def previous_for(status: PlatformStatus, release_image: str | None) -> str | None:
    """The version the main deployment must return to, or None if it is right."""
    if status.previous_image and (release_image is None or status.stable_image == release_image):
        return status.previous_image if status.previous_image != status.stable_image else None
    return None


class Rollout:
    """The steps of a canary, a promotion and a rollback over ``platform`` and ``router``
    (blue/green takes the same steps: :mod:`pytest_release.canary.bluegreen`).

    ``stable_image`` and ``stable_replicas`` start the main deployment on a fresh platform
    that creates one (``platform.stable_image``: the version running in production now).
    """

    def __init__(
        self,
        platform: Platform,
        router: TrafficRouter,
        *,
        stable_image: str | None = None,
        stable_replicas: int = 1,
    ) -> None:
        self.platform = platform
        self.router = router
        self.stable_image = stable_image
        self.stable_replicas = stable_replicas

    # -- members ---------------------------------------------------------------------------
    @property
    def _members(self) -> str:
        return self.router.capabilities.members

    def _sync_members(self, status: PlatformStatus) -> Weights:
        """The router's members are the ones it names for the platform's groups (a
        group that lost its members loses its share: its traffic goes to the other)."""
        stable = list(self.router.members_for(status, "stable"))
        canary = list(self.router.members_for(status, "canary"))
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

    def _canary_routed(self) -> bool:
        """The router still names a canary member (unreadable: assume it does)."""
        try:
            return bool(self.router.weights().canary_members)
        except RouterError:  # e.g. every weight 0: take the canary out to be safe
            return True

    def _take_canary_out(self, status: PlatformStatus) -> None:
        """100 % to main and the canary's members out of the router, drained, before the
        canary's replicas stop.  A router whose members must serve (``idle_members``
        False) lets go of the canary's member also when its replicas are gone already
        (a dead man's switch scaled them to 0): a routing object naming a deleted Service
        is invalid.  Where the platform keeps the members, its own removal does this."""
        if self._members == "platform":
            return
        leaving = bool(status.group("canary"))
        if not leaving and not self.router.capabilities.idle_members:
            leaving = self._canary_routed()
        if not leaving:
            return
        stable = list(self.router.members_for(status, "stable"))
        self.router.set_members(stable=stable, canary=[], split=(100, 0))
        self.router.drain()

    # -- main ------------------------------------------------------------------------------
    def ensure_main(self) -> PlatformStatus:
        """The main deployment runs (started from ``stable_image`` on a fresh platform
        that creates one) and the router sends it traffic."""
        status = self.platform.status()
        if status.stable_image is None and self.platform.capabilities.creates_main:
            status = self._start_main()
        self.router.start()
        if self._members == "replicas":
            self._sync_members(status)
        return status

    def _start_main(self) -> PlatformStatus:
        terms = self.platform.terms
        if not self.stable_image:
            raise RolloutError(
                f"no {terms.main} runs on {self.platform.name} and there is nothing to "
                "compare the canary with; set platform.stable_image (the version running in "
                "production now) so the first stage starts it"
            )
        status = self.platform.deploy_stable(self.stable_image, self.stable_replicas)
        self.router.wait_serving("stable", len(status.group("stable")))
        return status

    # -- canary ----------------------------------------------------------------------------
    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        """``replicas`` ready canary replicas of ``image``, joined to the router at the
        current split (0 % when the canary is new)."""
        status = self.ensure_main()
        going = status.endpoints("canary")[replicas:]
        if self._members == "replicas" and status.canary_image == image and going:
            # Scale down: the replicas that go (the platform keeps the first ones) leave
            # the router, drained, before they stop.
            weights = self.router.weights()
            self.router.set_members(
                stable=self.router.members_for(status, "stable"),
                canary=status.endpoints("canary")[:replicas],
                split=(weights.stable, weights.canary),
            )
        status = self.platform.deploy_canary(image, replicas)
        self.router.wait_serving("canary", replicas)
        if self._members != "platform":
            self._sync_members(status)
        return status

    def shift(self, canary_percent: int) -> Weights:
        """The canary's share of the traffic, read back."""
        return self.router.set_weights(stable=100 - canary_percent, canary=canary_percent)

    def promote(self, image: str, replicas: int, *, record_previous: bool = True) -> Weights:
        """Main deployment := ``replicas`` replicas of ``image`` at 100 %; canary gone.
        Meanwhile the canary carries all traffic; the replicas that stop leave the router
        (drained) first."""
        # Checked before anything changes: a platform that cannot take a step says so.
        updater = self._main_updater() if self.platform.capabilities.updates_main_in_place else None
        status = self.platform.status()
        # In place, any ready canary of the release serves while main rolls; otherwise the
        # canary becomes main, so it must be ``replicas`` ready replicas of it.
        if updater is None or status.canary_image != image or not status.group("canary"):
            self.deploy_canary(image, replicas)
        self.shift(100)
        if updater is not None:
            updater.update_main(image, replicas, record_previous=record_previous)
            self.router.wait_serving("stable", replicas)
            # All traffic back to the main deployment's member; the canary leaves and goes.
            self.remove_canary()
            return self.router.weights()
        if self._members == "replicas":
            # The old main gets no traffic any more; it leaves the router before it stops.
            status = self.platform.status()
            canary = self.router.members_for(status, "canary")
            self.router.set_members(stable=[], canary=canary, split=(0, 100))
            self.router.drain()
        status = self.platform.promote(record_previous=record_previous)
        if self._members != "platform":
            # The canary's members are the main group's now, at 100 %.
            return self._sync_members(status)
        return self.router.weights()

    def _main_updater(self) -> UpdatesMainInPlace:
        if isinstance(self.platform, UpdatesMainInPlace):
            return self.platform
        raise self._missing(
            "updates_main_in_place",
            "update_main(image, replicas, record_previous=...)",
            "UpdatesMainInPlace",
        )

    def _main_restorer(self) -> RestoresMain:
        if isinstance(self.platform, RestoresMain):
            return self.platform
        raise self._missing("restores_main", "restore_main(image)", "RestoresMain")

    def _missing(self, capability: str, method: str, protocol: str) -> RolloutError:
        """The usage error of a platform declaring ``capability`` without implementing the
        ``protocol`` (of :mod:`pytest_release.canary.platform`) it promises."""
        return RolloutError(
            f"{self.platform.name} declares capabilities.{capability} but has no "
            f"{method}: implement it (pytest_release.canary.platform.{protocol}) "
            "or leave the capability False"
        )

    # -- rollback --------------------------------------------------------------------------
    def rollback_traffic(self) -> Weights:
        """100 % of the traffic to the main deployment (read back)."""
        status = self.platform.status()
        if status.stable_image is None or not status.group("stable"):
            terms = self.platform.terms
            raise RolloutError(
                f"cannot send all traffic to the {terms.main}: it has no {terms.unit} "
                f"({status.describe()})"
            )
        self.router.start()
        if self._members == "replicas":
            self._sync_members(status)
        if self.router.capabilities.idle_members:
            return self.router.set_weights(stable=100, canary=0)
        # Not weight 0: the canary's member must serve while the router names it, and a
        # canary being rolled back is about to stop serving.
        stable = list(self.router.members_for(status, "stable"))
        return self.router.set_members(stable=stable, canary=[], split=(100, 0))

    def remove_canary(self) -> PlatformStatus:
        """The canary leaves the router (drained), then its replicas stop."""
        self._take_canary_out(self.platform.status())
        return self.platform.rollback()

    def restore_main(self, image: str) -> PlatformStatus:
        """Main deployment back on ``image`` if it runs another one: by the platform
        itself where it keeps earlier versions, else as a canary of ``image`` promoted
        (same replica count; the previous version is not recorded)."""
        status = self.platform.status()
        if status.stable_image == image:
            return status
        if self.platform.capabilities.restores_main:
            restorer = self._main_restorer()
            if status.group("canary") or status.canary_image:
                self.remove_canary()
            status = restorer.restore_main(image)
            self.router.wait_serving("stable", len(status.group("stable")))
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
        if status.group("stable"):
            self.rollback_traffic()
        status = self.remove_canary()
        target = self.previous_for(status, release_image)
        if target is not None:
            status = self.restore_main(target)
        return status

    previous_for = staticmethod(previous_for)

    # -- checks ----------------------------------------------------------------------------
    def targets(self) -> Targets:
        """Where the hold's sampler sends requests: the router and the replicas, as far
        as this process reaches them (``PlatformCapabilities.sampler_reach``)."""
        status = self.platform.status()
        # Replicas behind one endpoint (the instances of a Cloud Run revision, 'rev#2')
        # are named by what they share.
        names = {r.endpoint: r.name.split("#")[0] for r in status.replicas}
        for server, endpoint in self.router.server_endpoints().items():
            if endpoint in names:
                names[server] = names[endpoint]
        reach = self.platform.capabilities.sampler_reach
        if reach == "nothing":
            return Targets(router_url=None, stable=(), canary=(), names=names)

        def reachable(group: Group) -> tuple[str, ...]:
            if reach != "replicas":
                return ()
            # An endpoint without an address ('-:8080': a pod without an IP yet) is skipped.
            found = status.endpoints(group)
            return tuple(dict.fromkeys(e for e in found if not e.startswith("-")))

        return Targets(
            router_url=self.router.url or None,
            stable=reachable("stable"),
            canary=reachable("canary"),
            names=names,
        )

    def verify_main(
        self,
        image: str | None,
        replicas: int | None,
        requests: int,
        baseline: ErrorBaseline = NO_BASELINE,
    ) -> MainCheck:
        """The end state of a promotion or rollback, checked end to end: the version and
        replicas, the router's split, and ``requests`` requests through the router whose
        errors are not credibly above ``baseline``; raises :class:`RolloutError` naming
        every difference (:func:`pytest_release.canary.end_state.verify_main`)."""
        return verify_main(self, image, replicas, requests, baseline)

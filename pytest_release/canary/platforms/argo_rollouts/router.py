"""The ``TraefikService`` an Argo Rollouts ``Rollout`` routes through, read as a
:class:`~pytest_release.canary.router.TrafficRouter`: the weights the controller set, and
the stable and canary Services behind them.  Reading only: setting weights or members
raises :class:`~pytest_release.errors.RouterError` (the controller sets them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn, Unpack

from pytest_release.canary.platforms.argo_rollouts.observe import RolloutObserver
from pytest_release.canary.router import MemberChange, RouterCapabilities, VersionCount, Weights
from pytest_release.errors import RouterError

if TYPE_CHECKING:
    from pytest_release.canary.platform import Group, PlatformStatus


class ObservedTraefikRouter:
    """The weights of the Rollout's TraefikService; the Services from its canary strategy."""

    # No counters (Traefik's go through Prometheus); one member per group (the Services).
    capabilities = RouterCapabilities(members="groups", idle_members=False)

    def __init__(
        self,
        observer: RolloutObserver,
        *,
        traefik_service: str,
        stable_service: str,
        canary_service: str,
        url: str | None,
    ) -> None:
        self.observer = observer
        self.traefik_service = traefik_service
        self.stable_service = stable_service
        self.canary_service = canary_service
        self._url = url or ""

    @property
    def url(self) -> str:
        return self._url

    @property
    def describe(self) -> str:
        return (
            f"TraefikService '{self.traefik_service}' in namespace '{self.observer.namespace}' "
            f"(set by Argo Rollouts for Rollout '{self.observer.name}')"
        )

    def members_for(self, status: PlatformStatus, group: Group) -> tuple[str, ...]:
        return (self.stable_service,) if group == "stable" else (self.canary_service,)

    def counters(self) -> dict[Group, VersionCount] | None:
        return None

    def backend_problems(self, status: PlatformStatus) -> list[str]:
        return []

    def _refuse(self, what: str) -> NoReturn:
        raise RouterError(
            f"{what} of {self.describe} is the Argo Rollouts controller's: pytest-release "
            "only reads them (platform.type = 'argo-rollouts')"
        )

    def server_endpoints(self) -> dict[str, str]:
        return {}

    def start(self) -> None:
        self._refuse("creating the routing")

    def set_members(self, **change: Unpack[MemberChange]) -> Weights:
        self._refuse("setting the Services")

    def wait_serving(self, group: Group, replicas: int) -> None:
        self._refuse("waiting for a group to serve")

    def drain(self) -> None:
        self._refuse("draining")

    def set_weights(self, *, stable: int, canary: int) -> Weights:
        self._refuse("setting the weights")

    def weights(self) -> Weights:
        seen = self.observer.observe()
        if seen.router_weights is None:
            raise RouterError(
                f"the Rollout {seen.namespace}/{seen.name} names no "
                "trafficRouting.traefik.weightedTraefikServiceName: pytest-release reads the "
                "weights from that TraefikService"
            )
        found = seen.router_weights
        return Weights(
            stable=found.stable,
            canary=found.canary,
            stable_members=(self.stable_service,) if found.stable else (),
            canary_members=(self.canary_service,) if found.canary else (),
        )

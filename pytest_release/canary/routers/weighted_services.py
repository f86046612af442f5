"""What the Traefik and Gateway API routers share: weights over two Services.

A router's members are Services: the main Service (``stable``) and the canary Service
(``canary``).  The routing object lists them as weighted backends; weights are written as
percentages and read back from the object the API server stored, so a report never
claims a split the cluster does not have.  Every change is a JSON merge patch (a real API
server rejects strategic merge patches on custom resources).  A backend that would get
traffic must have at least one ready endpoint (EndpointSlices of its Service): the router
refuses to send traffic to a Service that cannot serve it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from pytest_release.canary.platforms.kubernetes.client import (
    ENDPOINT_SLICES,
    JSON,
    Kind,
    KubeApi,
    LazyApi,
    raising_as,
)
from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
from pytest_release.canary.router import (
    MemberChange,
    RouterCapabilities,
    VersionCount,
    Weights,
    check_weights,
)
from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
from pytest_release.errors import RolloutError, RouterError

if TYPE_CHECKING:
    from pytest_release.canary.platform import Group, PlatformStatus


@dataclass(frozen=True)
class Backend:
    service: str
    weight: int


class WeightedServiceRouter:
    """Base of :class:`TraefikRouter` and :class:`GatewayRouter`."""

    object_kind = "routing object"
    # Weights only (no per-version counters here); members are the two Services, which
    # must serve while named.
    capabilities = RouterCapabilities(members="groups", idle_members=False)

    def __init__(
        self,
        config: TraefikRouterConfig | GatewayRouterConfig,
        platform: KubernetesPlatformConfig,
        rootdir: Path | None = None,
        api: KubeApi | None = None,
    ) -> None:
        self.config = config
        self.platform = platform
        self.rootdir = rootdir
        self._api = LazyApi(
            lambda: KubeApi(platform, rootdir, platform.request_timeout), RouterError, api
        )
        self.namespace = config.namespace or platform.namespace
        self.name = config.name or platform.main_name
        self.stable_service = platform.main_name
        self.canary_service = platform.canary_name
        self.port = platform.port

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def api(self) -> KubeApi:
        return self._api.get()

    def _call(self, action: Callable[[], Any]) -> Any:
        return raising_as(RouterError, action)

    @property
    def url(self) -> str:
        return self.config.url or ""

    @property
    def describe(self) -> str:
        return f"{self.object_kind} '{self.name}' in namespace '{self.namespace}'"

    def server_endpoints(self) -> dict[str, str]:
        return {}

    def members_for(self, status: PlatformStatus, group: Group) -> tuple[str, ...]:
        """One Service a group (when the group has pods or the canary Deployment exists)."""
        if group == "stable":
            return (self.stable_service,)
        return (self.canary_service,) if status.group("canary") or status.canary_image else ()

    def counters(self) -> dict[Group, VersionCount] | None:
        return None  # Traefik's and a Gateway's counters are read through Prometheus

    def backend_problems(self, status: PlatformStatus) -> list[str]:
        """The main Service has a ready endpoint per main pod (at least one)."""
        pods = len(status.group("stable"))
        endpoints = self.ready_endpoints(self.stable_service)
        if endpoints >= max(1, pods):
            return []
        return [
            f"the main Service '{self.stable_service}' has {endpoints} ready endpoint(s) for "
            f"{pods} pod(s)"
        ]

    # -- implemented by the subclasses -------------------------------------------------------
    def kind(self) -> Kind:
        raise NotImplementedError

    def new_object(self) -> JSON:
        raise NotImplementedError

    def read_backends(self, obj: Mapping[str, Any]) -> list[JSON]:
        raise NotImplementedError

    def backends_patch(self, obj: Mapping[str, Any], backends: list[JSON]) -> JSON:
        raise NotImplementedError

    # -- the protocol ------------------------------------------------------------------------
    def start(self) -> None:
        """The routing object exists (created with all traffic to the main Service)."""
        self._call(self._ensure)

    def _ensure(self) -> JSON:
        kind = self.kind()
        obj = self.api.get(kind, self.namespace, self.name)
        if obj is not None:
            return obj
        if not self.config.create:
            raise RouterError(
                f"{self.describe} does not exist and router.create = false; create it "
                "(see deploy/kubernetes/example) or set router.create = true"
            )
        return self.api.create(kind, self.namespace, self.new_object())

    def weights(self) -> Weights:
        return self._call(lambda: self._weights(self._ensure()))  # type: ignore[no-any-return]

    def _weights(self, obj: Mapping[str, Any]) -> Weights:
        backends = self._backends(obj)
        total = sum(b.weight for b in backends)
        stable = sum(b.weight for b in backends if b.service == self.stable_service)
        canary = sum(b.weight for b in backends if b.service == self.canary_service)
        if total <= 0:
            raise RouterError(f"{self.describe} sends no traffic anywhere: every weight is 0")
        stable_pct = round(100 * stable / total)
        return Weights(
            stable=stable_pct,
            canary=100 - stable_pct if canary else 0,
            stable_members=tuple(b.service for b in backends if b.service == self.stable_service),
            canary_members=tuple(b.service for b in backends if b.service == self.canary_service),
        )

    def _backends(self, obj: Mapping[str, Any]) -> list[Backend]:
        found = []
        for entry in self.read_backends(obj):
            name = str(entry.get("name", ""))
            if name not in (self.stable_service, self.canary_service):
                raise RouterError(
                    f"{self.describe} has a backend {name!r} that is neither the main Service "
                    f"'{self.stable_service}' nor the canary Service '{self.canary_service}'; "
                    "this router manages exactly those two"
                )
            weight = entry.get("weight", 1)
            found.append(Backend(name, int(weight if weight is not None else 1)))
        return found

    def set_weights(self, *, stable: int, canary: int) -> Weights:
        check_weights(stable, canary)
        members = [self.canary_service] if canary > 0 else self._current_canary_members()
        return self._write(members, (stable, canary))

    def set_members(self, **change: Unpack[MemberChange]) -> Weights:
        """Which Services serve each group (``stable`` must be the main Service, ``canary``
        the canary Service or empty); ``split`` (stable, canary) or the current split."""
        stable, canary, split = change["stable"], change["canary"], change.get("split")
        for group, names, allowed in (
            ("stable", stable, self.stable_service),
            ("canary", canary, self.canary_service),
        ):
            for service in names:
                if service != allowed:
                    raise RouterError(
                        f"the {group} group of {self.describe} can only be the Service "
                        f"'{allowed}', got {service!r}"
                    )
        if split is None:
            current = self.weights()
            split = (current.stable, current.canary) if canary else (100, 0)
        check_weights(*split)
        return self._write(list(canary), split)

    def _current_canary_members(self) -> list[str]:
        return list(self.weights().canary_members)

    def _write(self, canary_members: list[str], split: tuple[int, int]) -> Weights:
        stable_weight, canary_weight = split
        if canary_weight > 0 and not canary_members:
            raise RouterError(
                f"cannot send {canary_weight}% of the traffic to the canary: the canary Service "
                f"'{self.canary_service}' is not a backend of {self.describe}"
            )

        def run() -> Weights:
            obj = self._ensure()
            self._backends(obj)  # refuse unknown backends before changing anything
            for service, weight in (
                (self.stable_service, stable_weight),
                (self.canary_service, canary_weight),
            ):
                if weight > 0:
                    self._require_endpoints(service, weight)
            entries = self.read_backends(obj)
            by_name = {str(e.get("name")): dict(e) for e in entries}
            backends: list[JSON] = []
            wanted = [(self.stable_service, stable_weight)]
            wanted += [(s, canary_weight) for s in canary_members]
            for service, weight in wanted:
                entry = by_name.get(service) or {"name": service, "port": self.port}
                entry["weight"] = weight
                backends.append(entry)
            stored = self.api.merge_patch(
                self.kind(), self.namespace, self.name, self.backends_patch(obj, backends)
            )
            got = self._weights(stored)
            if (got.stable, got.canary) != split or set(got.canary_members) != set(canary_members):
                raise RouterError(
                    f"{self.describe} applies {got} (canary backends "
                    f"{list(got.canary_members)}) after the change, expected stable "
                    f"{stable_weight}% / canary {canary_weight}% (canary backends "
                    f"{canary_members})"
                )
            return got

        return self._call(run)  # type: ignore[no-any-return]

    def _require_endpoints(self, service: str, weight: int) -> None:
        ready, total = self._endpoints(service)
        if ready == 0:
            raise RouterError(
                f"refusing to send {weight}% of the traffic to Service '{service}' in namespace "
                f"'{self.namespace}': it has no ready endpoint ({total} endpoint(s), 0 ready). "
                "Check that its pods are running and ready and that the Service selects them"
            )

    def _endpoints(self, service: str) -> tuple[int, int]:
        """(ready, all) endpoints of ``service``, from its EndpointSlices."""
        ready = total = 0
        for endpoint_slice in self.api.list(
            ENDPOINT_SLICES, self.namespace, f"kubernetes.io/service-name={service}"
        ):
            for endpoint in endpoint_slice.get("endpoints") or []:
                total += 1
                if (endpoint.get("conditions") or {}).get("ready") is not False:
                    ready += 1
        return ready, total

    def wait_applied(self) -> bool:
        """Wait until the router applies the stored routing object; False when this router
        cannot tell (the caller waits ``router.drain_delay`` instead)."""
        return False

    def release_canary(self) -> Weights:
        """100 % to the main Service, the canary Service no backend at all: a router may
        refuse a whole routing object that names a Service without serving endpoints, at
        weight 0 too (Traefik does), so a canary about to lose its pods must leave it."""
        return self.set_members(stable=[self.stable_service], canary=[], split=(100, 0))

    def wait_serving(self, group: Group, replicas: int) -> None:
        """Wait until the group's Service has ``replicas`` ready endpoints (the endpoint
        controller follows pod readiness with a delay; routers refuse Services without
        endpoints), within ``platform.rollout_timeout``."""
        service = self.stable_service if group == "stable" else self.canary_service
        timeout = self.platform.rollout_timeout
        deadline = time.monotonic() + timeout
        while (ready := self.ready_endpoints(service)) < replicas:
            if time.monotonic() > deadline:
                raise RolloutError(
                    f"Service '{service}' in namespace '{self.platform.namespace}' has {ready} "
                    f"ready endpoint(s) {timeout:g}s after its {replicas} pod(s) became ready: "
                    "check that the Service's selector and ports match the pods"
                )
            time.sleep(0.2)

    def drain(self) -> None:
        """Requests the router still sends to a member that left (it applies changes
        asynchronously) reach live pods: wait until the router reports the change applied
        (Traefik with ``router.api_url``), else ``router.drain_delay``."""
        if not self.wait_applied():
            time.sleep(self.config.drain_delay)

    def ready_endpoints(self, service: str) -> int:
        """Ready endpoints of ``service`` (EndpointSlices)."""
        return self._call(lambda: self._endpoints(service)[0])  # type: ignore[no-any-return]

"""Who gets which share of the traffic: the ``TrafficRouter`` protocol.

A router splits requests between the ``stable`` and ``canary`` groups.  Weights are
percentages (``stable + canary == 100``); every change is read back from the router
itself and compared, so a report never claims a split the router does not apply.

Implementations: :mod:`pytest_release.canary.routers.haproxy.router` (HAProxy runtime API, local);
a Traefik ``TraefikService`` or Gateway API ``HTTPRoute`` router fits the same protocol
(``set_members`` becomes the Services behind each weight).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pytest_release.errors import RouterError

if TYPE_CHECKING:
    from pytest_release.canary.platform import Group, PlatformStatus


@dataclass(frozen=True)
class RouterCapabilities:
    """What a router can do beyond setting and reading back weights; the gate checks a
    configuration against them (``judge.evidence = ['router']`` needs ``counters``)."""

    weight_step: int = 1  # the smallest change of a weight, in percent
    counters: bool = False  # per-version request/error counters (router evidence)
    latency: bool = False  # per-version latency (HAProxy: an average only)
    sessions: bool = False  # sticky sessions (a client stays on one version)


@dataclass(frozen=True)
class Weights:
    """The split read back from the router, in percent."""

    stable: int
    canary: int
    stable_members: tuple[str, ...] = ()  # endpoints serving each group
    canary_members: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"stable {self.stable}% / canary {self.canary}%"


@dataclass(frozen=True)
class VersionCount:
    """What a router counted for one group since it started (cumulative)."""

    requests: int
    errors: int  # 5xx answers and requests no server answered


def check_weights(stable: int, canary: int) -> None:
    for name, value in (("stable", stable), ("canary", canary)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            raise RouterError(f"{name} weight must be an integer percentage 0..100, got {value!r}")
    if stable + canary != 100:
        raise RouterError(
            f"weights are percentages of all traffic and must add up to 100, got stable={stable} "
            f"+ canary={canary} = {stable + canary}"
        )


@runtime_checkable
class TrafficRouter(Protocol):
    """Splits traffic between the stable and canary groups."""

    capabilities: RouterCapabilities

    @property
    def url(self) -> str:
        """Where clients send requests (e.g. ``http://127.0.0.1:18080``)."""
        ...

    @property
    def describe(self) -> str:
        """The router in messages ("Traefik TraefikService 'shop' in namespace 'prod'")."""
        ...

    def members_for(self, status: PlatformStatus, group: Group) -> tuple[str, ...]:
        """The members this router names for ``group`` of the platform's replicas
        (endpoints, Services, revisions): what :attr:`Weights.stable_members` must be."""
        ...

    def counters(self) -> dict[Group, VersionCount] | None:
        """Requests and errors counted per group so far, or None when the router counts
        nothing itself (``capabilities.counters`` is False)."""
        ...

    def backend_problems(self, status: PlatformStatus) -> list[str]:
        """What the router knows is wrong with the main group's backends (a Service
        without ready endpoints); empty when it knows nothing more than the weights."""
        ...

    def set_members(self, *, stable: Sequence[str], canary: Sequence[str]) -> Weights:
        """Which endpoints serve each group; the current split is kept.  Endpoints that
        leave are drained (no new requests, in-flight ones finish) before this returns."""
        ...

    def set_weights(self, *, stable: int, canary: int) -> Weights:
        """Change the split live; returns the split read back (raises
        :class:`RouterError` when it differs from the one asked for)."""
        ...

    def weights(self) -> Weights:
        """The split the router applies now, read from the router."""
        ...

"""Who gets which share of the traffic: the ``TrafficRouter`` protocol.

A router splits requests between the ``stable`` and ``canary`` groups.  Weights are
percentages (``stable + canary == 100``); every change is read back from the router
itself and compared, so a report never claims a split the router does not apply.

Implementations: :mod:`pytest_release.canary.routers.haproxy.router` (HAProxy runtime API,
local; members are the replicas' endpoints), :mod:`pytest_release.canary.routers.traefik`
and :mod:`pytest_release.canary.routers.gateway` (a ``TraefikService`` or ``HTTPRoute``;
members are Services), :mod:`pytest_release.canary.platforms.cloud_run.router` (the
service's own split; members are revisions).  What differs between them is declared in
:class:`RouterCapabilities`, which the one rollout follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Literal,
    NotRequired,
    Protocol,
    TypedDict,
    Unpack,
    runtime_checkable,
)

from pytest_release.errors import RouterError

if TYPE_CHECKING:
    from pytest_release.canary.platform import Group, PlatformStatus


Members = Literal["replicas", "groups", "platform"]


@dataclass(frozen=True)
class RouterCapabilities:
    """What a router can do beyond setting and reading back weights; the gate checks a
    configuration against them (``judge.evidence = ['router']`` needs ``counters``), and
    the one :class:`~pytest_release.canary.rollout.Rollout` takes its steps by them.

    ``members`` says what the router's members are, and so who moves them:

    * ``"replicas"``: every replica's own endpoint (HAProxy).  The rollout adds a replica
      once it is ready and takes it out (drained) before it stops, also the old main's
      replicas before a promotion stops them.
    * ``"groups"``: one member per group, whose endpoints follow the replicas (a Service
      behind Traefik or a Gateway route).  The canary's member joins once it has ready
      endpoints (:meth:`TrafficRouter.wait_serving`) and leaves before its replicas go.
    * ``"platform"``: the platform puts its groups into the split itself (Cloud Run tags
      revisions); the rollout changes weights only.
    """

    weight_step: int = 1  # the smallest change of a weight, in percent
    counters: bool = False  # per-version request/error counters (router evidence)
    latency: bool = False  # per-version latency (HAProxy: an average only)
    sessions: bool = False  # sticky sessions (a client stays on one version)
    members: Members = "replicas"
    # A member may stay at weight 0 while its replicas go (an HAProxy server, a Cloud Run
    # revision).  False: a member the router names must serve, at weight 0 too (Traefik
    # refuses a whole TraefikService naming a Service without ready endpoints), so
    # taking all traffic from the canary takes its member out of the router.
    idle_members: bool = True


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


class MemberChange(TypedDict):
    """The keyword arguments of :meth:`TrafficRouter.set_members`, declared once for the
    protocol and every router (each takes ``**change: Unpack[MemberChange]``); callers
    still write ``set_members(stable=..., canary=..., split=...)``."""

    stable: Sequence[str]  # the members serving each group
    canary: Sequence[str]
    split: NotRequired[tuple[int, int] | None]  # (stable, canary) in the same step; None: kept


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

    def server_endpoints(self) -> dict[str, str]:
        """The name the router gives each member in its answers (HAProxy's
        ``X-Release-Server: slot3``) -> that member's endpoint; empty when it names none."""
        ...

    def start(self) -> None:
        """The router exists and sends the main group its traffic (HAProxy started or
        re-attached; the routing object created; Cloud Run's serving revision tagged as
        the main one)."""
        ...

    def set_members(self, **change: Unpack[MemberChange]) -> Weights:
        """Which members serve each group; ``split`` (stable, canary) changes the weights
        in the same step, else the current split is kept.  Members that leave get no new
        requests before this returns (drained, where the router applies changes at once)."""
        ...

    def wait_serving(self, group: Group, replicas: int) -> None:
        """Return once the group's member can serve ``replicas`` ready replicas (a Service:
        that many ready endpoints; the endpoint controller follows pod readiness with a
        delay, and a router refuses a Service without them); at once where the members
        are the replicas themselves.  Raises :class:`RolloutError` after its timeout."""
        ...

    def drain(self) -> None:
        """After members left (:meth:`set_members`): return once the router sends them no
        more requests.  A router that applies changes asynchronously waits until it
        reports the change applied, else its drain delay; one that drains in
        :meth:`set_members` returns at once."""
        ...

    def set_weights(self, *, stable: int, canary: int) -> Weights:
        """Change the split live; returns the split read back (raises
        :class:`RouterError` when it differs from the one asked for)."""
        ...

    def weights(self) -> Weights:
        """The split the router applies now, read from the router."""
        ...

"""Where versions run: the ``Platform`` protocol and the data it returns.

A platform runs two groups of replicas of a service: ``stable`` (the main deployment)
and ``canary`` (the version being released).  It starts and stops replicas and reports
their state; it does not route traffic (see :mod:`pytest_release.canary.router`), so
the rollout code decides the order of steps that keeps every request served.

Implementations: :mod:`pytest_release.canary.platforms.local.platform` (processes or Docker
containers on 127.0.0.1); a Kubernetes platform fits the same protocol (main and canary
Deployments, Pod readiness and restart counts, Service endpoints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pytest_release.canary.samples import ReplicaStatus

Group = Literal["stable", "canary"]


@dataclass(frozen=True)
class PlatformStatus:
    """Every replica the platform runs, plus what each group is deployed with."""

    timestamp: float
    replicas: tuple[ReplicaStatus, ...]
    stable_image: str | None
    canary_image: str | None
    previous_image: str | None  # what the main deployment ran before its last promotion

    def group(self, version: Group) -> tuple[ReplicaStatus, ...]:
        return tuple(r for r in self.replicas if r.version == version)

    def endpoints(self, version: Group) -> tuple[str, ...]:
        return tuple(r.endpoint for r in self.group(version))

    def not_ready(self, version: Group) -> tuple[ReplicaStatus, ...]:
        return tuple(r for r in self.group(version) if not (r.running and r.ready))

    def describe(self) -> str:
        """One line per replica, for failure messages."""
        if not self.replicas:
            return "no replicas"
        return "; ".join(
            f"{r.name} ({r.version}, {r.image}, {r.endpoint}): "
            f"{'running' if r.running else 'not running'}, "
            f"{'ready' if r.ready else 'not ready'}, {r.restarts} restart(s)"
            + (f" [{'; '.join(r.events)}]" if r.events else "")
            for r in self.replicas
        )


@dataclass(frozen=True)
class PlatformTerms:
    """What a platform calls its parts, for the end-state messages
    (:mod:`pytest_release.canary.end_state`): "main Deployment has 2 pod(s)"."""

    main: str = "main deployment"  # the stable group as a whole
    unit: str = "replica"  # one member of a group
    listing: str = "replicas"  # the heading of PlatformStatus.describe() in messages


@runtime_checkable
class Platform(Protocol):
    """Runs the stable (main) and canary groups of one service."""

    name: str
    terms: PlatformTerms

    def status(self) -> PlatformStatus:
        """Every replica now: running, ready, restart count, endpoint, version."""
        ...

    def deploy_stable(self, image: str, replicas: int) -> PlatformStatus:
        """Start the main deployment when none runs yet (first release on a platform)."""
        ...

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        """Run ``replicas`` canary replicas of ``image`` (create or scale) and wait until
        they are ready; raises :class:`PlatformError` naming the replicas that are not."""
        ...

    def promote(self, *, record_previous: bool = True) -> PlatformStatus:
        """Make the canary group the main deployment: the old main replicas are stopped
        (route traffic away from them first) and the canary group is relabelled stable.
        ``previous_image`` becomes the old main's image (or is cleared)."""
        ...

    def rollback(self) -> PlatformStatus:
        """Remove the canary replicas (route traffic away from them first); the main
        deployment keeps running its version."""
        ...

    def cleanup(self) -> None:
        """End everything this platform started (replicas, helpers) and forget its state."""
        ...


def ready_endpoints(replicas: Sequence[ReplicaStatus]) -> tuple[str, ...]:
    return tuple(r.endpoint for r in replicas if r.running and r.ready)

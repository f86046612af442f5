"""Where versions run: the ``Platform`` protocol and the data it returns.

A platform runs two groups of replicas of a service: ``stable`` (the main deployment)
and ``canary`` (the version being released).  It starts and stops replicas and reports
their state; it does not route traffic (see :mod:`pytest_release.canary.router`), so
the rollout code decides the order of steps that keeps every request served.

Implementations: :mod:`pytest_release.canary.platforms.local.platform` (processes or Docker
containers on 127.0.0.1), :mod:`pytest_release.canary.platforms.kubernetes.platform` (main
and canary Deployments), :mod:`pytest_release.canary.platforms.cloud_run.platform` (main and
canary revisions).  What differs between them is declared in :class:`PlatformCapabilities`,
which the one :class:`~pytest_release.canary.rollout.Rollout` follows; the two optional
operations a capability promises are the protocols :class:`UpdatesMainInPlace` and
:class:`RestoresMain`.
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


SamplerReach = Literal["replicas", "router", "nothing"]


@dataclass(frozen=True)
class PlatformCapabilities:
    """How a platform takes the rollout's steps, where platforms differ."""

    # deploy_stable starts a main deployment on a fresh platform (from platform.stable_image).
    # False: the platform adopts the main that serves (Cloud Run: its serving revision,
    # tagged when the router starts) and never creates one.
    creates_main: bool = True
    # A promotion updates the main deployment in place (UpdatesMainInPlace.update_main,
    # Kubernetes: a rolling update of the main Deployment behind its Service) while the
    # canary carries all traffic.  False: the canary group becomes the main one
    # (Platform.promote: local replicas relabelled, a Cloud Run revision re-tagged).
    updates_main_in_place: bool = False
    # RestoresMain.restore_main returns main to an earlier version itself (a kept
    # ReplicaSet revision or Cloud Run revision).  False: the rollout deploys that version
    # as a canary and promotes it.
    restores_main: bool = False
    # What the hold's sampler reaches from this process: every replica's endpoint and the
    # router ("replicas"), the router only ("router": Cloud Run over HTTPS; the sampler's
    # direct requests speak plain HTTP), or nothing ("nothing": pod IPs of a cluster's
    # network; the hold judges platform status only).
    sampler_reach: SamplerReach = "replicas"


@runtime_checkable
class Platform(Protocol):
    """Runs the stable (main) and canary groups of one service."""

    name: str
    terms: PlatformTerms

    @property
    def capabilities(self) -> PlatformCapabilities:
        """How it takes the rollout's steps (a class attribute will do)."""
        ...

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


@runtime_checkable
class UpdatesMainInPlace(Protocol):
    """A platform with ``capabilities.updates_main_in_place``."""

    def update_main(self, image: str, replicas: int, *, record_previous: bool = True) -> None:
        """The main deployment on ``image`` with ``replicas`` ready replicas, updated in
        place; its image before is recorded as ``previous_image`` (or the record cleared)."""
        ...


@runtime_checkable
class RestoresMain(Protocol):
    """A platform with ``capabilities.restores_main``."""

    def restore_main(self, image: str) -> PlatformStatus:
        """The main deployment back on ``image`` (a version it ran before), verified."""
        ...


def ready_endpoints(replicas: Sequence[ReplicaStatus]) -> tuple[str, ...]:
    return tuple(r.endpoint for r in replicas if r.running and r.ready)

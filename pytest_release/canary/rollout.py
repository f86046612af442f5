"""The rollout steps the canary controller performs: the ``Rollout`` protocol.

A rollout drives one :class:`~pytest_release.canary.platform.Platform` and one
:class:`~pytest_release.canary.router.TrafficRouter` in an order that keeps every request
served: replicas join the router only once ready, leave it (weight 0, drained) before
they stop.  Each platform folder implements it over its own kind of members
(:mod:`pytest_release.canary.platforms.local.rollout`: endpoints behind HAProxy;
:mod:`pytest_release.canary.platforms.kubernetes.rollout`: Services behind Traefik or a
Gateway API route); :func:`pytest_release.canary.registry.build_rollout` picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_release.canary.platform import Platform, PlatformStatus
from pytest_release.canary.router import TrafficRouter, Weights
from pytest_release.canary.sampler import Targets
from pytest_release.errors import RolloutError

__all__ = [
    "NO_BASELINE",
    "ErrorBaseline",
    "MainCheck",
    "Rollout",
    "RolloutError",
    "previous_for",
    "probe_router",
]


@dataclass(frozen=True)
class MainCheck:
    """What :meth:`Rollout.verify_main` found: the main deployment as read back."""

    status: PlatformStatus
    weights: Weights
    requests: int
    failures: tuple[str, ...]


@dataclass(frozen=True)
class ErrorBaseline:
    """What the main deployment's error rate is compared with after a promotion or a
    rollback: stable's own errors measured before the change (the hold's stable samples),
    or, with none measured, an assumed ``fallback_rate``."""

    errors: int = 0
    total: int = 0
    fallback_rate: float = 0.0

    def credibly_exceeded(self, errors: int, total: int, alpha: float = 0.01) -> bool:
        from pytest_release.canary.stats import main_errors_credibly_above

        return main_errors_credibly_above(
            errors, total, self.errors, self.total, alpha, fallback_rate=self.fallback_rate
        )

    def excess(self, failures: Sequence[str], requests: int, where: str) -> str | None:
        """The problem to report when ``failures`` of ``requests`` requests through
        ``where`` are credibly more than this baseline allows, else None."""
        if not failures or not self.credibly_exceeded(len(failures), requests):
            return None
        return (
            f"{len(failures)} of {requests} requests through {where} failed, credibly more "
            f"than {self.describe()}: " + "; ".join(failures[:5])
        )

    def describe(self) -> str:
        if self.total:
            return f"stable's own {self.errors} error(s) in {self.total} requests before the change"
        return f"an assumed error rate of {self.fallback_rate:.2%}"


NO_BASELINE = ErrorBaseline()


def previous_for(status: PlatformStatus, release_image: str | None) -> str | None:
    """The version the main deployment must return to, or None if it is right."""
    if status.previous_image and (release_image is None or status.stable_image == release_image):
        return status.previous_image if status.previous_image != status.stable_image else None
    return None


def probe_router(url: str, requests: int) -> list[str]:
    """``requests`` GETs of ``/`` through the router at ``url`` (one kept-alive connection,
    reopened after a transport error); the failures (status >= 400 or transport error)."""
    import httpx

    from pytest_release.canary.http import ClientSettings, failure, http_client, http_origin

    target = http_origin(url) + "/"
    failures = []
    with http_client(ClientSettings(timeout=10)) as client:
        for _ in range(requests):
            try:
                status = client.get(target).status_code
            except httpx.HTTPError as exc:
                failures.append(failure("GET", "/", exc))
                continue
            if status >= 400:
                failures.append(f"GET / -> {status}")
    return failures


class Rollout(Protocol):
    """The steps of a canary, a promotion and a rollback over a platform and a router."""

    @property
    def platform(self) -> Platform: ...

    @property
    def router(self) -> TrafficRouter: ...

    def ensure_main(self) -> PlatformStatus:
        """The main deployment runs (started from ``stable_image`` on a fresh platform)
        and the router sends it traffic."""
        ...

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        """``replicas`` ready canary replicas of ``image``, joined to the router at the
        current split."""
        ...

    def shift(self, canary_percent: int) -> Weights:
        """The canary's share of the traffic, read back."""
        ...

    def promote(self, image: str, replicas: int, *, record_previous: bool = True) -> Weights:
        """Main deployment := ``replicas`` replicas of ``image`` at 100 %; canary gone."""
        ...

    def rollback_traffic(self) -> Weights:
        """100 % of the traffic to the main deployment (read back)."""
        ...

    def remove_canary(self) -> PlatformStatus:
        """The canary leaves the router (drained) and its replicas stop."""
        ...

    def restore_main(self, image: str) -> PlatformStatus:
        """Main deployment back on ``image``."""
        ...

    def rollback(self, release_image: str | None) -> PlatformStatus:
        """Traffic to main, canary removed, main back on the previous version when it was
        promoted to ``release_image``."""
        ...

    def previous_for(self, status: PlatformStatus, release_image: str | None) -> str | None:
        """See :func:`previous_for`."""
        ...

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
        every difference."""
        ...

    def targets(self) -> Targets:
        """Where the sampler sends requests during a hold (router and replicas that are
        reachable from this process)."""
        ...

"""The end states of a rollout, asserted once against the protocols.

"Main healthy, 100 % stable, canary gone" after a promotion or a rollback
(:func:`verify_main`), and "the new colour serves 100 %" after a blue/green switch
(:func:`verify_live`), for every platform and router: what differs between them is only
what the platform calls its parts (:class:`~pytest_release.canary.platform.PlatformTerms`),
which members the router names for a group (``Router.members_for``), and what the router
knows about its backends (``Router.backend_problems``).  Each check reads the state back
(platform status, router weights) and then sends requests through the router where this
process reaches it (``Rollout.targets().router_url``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pytest_release.canary.platform import Group, Platform, PlatformStatus
from pytest_release.canary.router import TrafficRouter, Weights
from pytest_release.errors import GateCheckFailed, RolloutError

if TYPE_CHECKING:
    from pytest_release.canary.sampler import Targets

__all__ = [
    "NO_BASELINE",
    "ErrorBaseline",
    "LiveCheck",
    "MainCheck",
    "RolloutParts",
    "group_problems",
    "probe",
    "probe_router",
    "verify_live",
    "verify_main",
]


class RolloutParts(Protocol):
    """What the end states read of a rollout (:class:`~pytest_release.canary.rollout.Rollout`
    has it): its platform and router, and where this process reaches the router."""

    @property
    def platform(self) -> Platform: ...

    @property
    def router(self) -> TrafficRouter: ...

    def targets(self) -> Targets: ...


@dataclass(frozen=True)
class MainCheck:
    """What :func:`verify_main` found: the main deployment as read back."""

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


class LiveCheck(MainCheck):
    """What :func:`verify_live` found after a switch: the same facts, the canary group
    being the live colour and the stable group the standby."""

    def properties(self) -> list[tuple[str, str]]:
        return [
            ("live.image", str(self.status.canary_image)),
            ("live.replicas", str(len(self.status.group("canary")))),
            ("standby.image", str(self.status.stable_image)),
            ("standby.replicas", str(len(self.status.group("stable")))),
            ("router.requests_checked", str(self.requests)),
            ("router.requests_failed", str(len(self.failures))),
        ]


def probe(url: str, requests: int) -> list[str]:
    """``requests`` GETs of ``/`` through ``url``; the failures.  Plain HTTP goes through
    :func:`probe_router` (one kept-alive connection); HTTPS (a Cloud Run service URL)
    through httpx."""
    if not url.startswith("https://"):
        return probe_router(url, requests)
    import httpx

    failures = []
    with httpx.Client(timeout=10.0) as client:
        for _ in range(requests):
            try:
                response = client.get(url.rstrip("/") + "/")
                if response.status_code >= 400:
                    failures.append(f"GET / -> {response.status_code}")
            except httpx.HTTPError as exc:
                failures.append(f"GET / -> {type(exc).__name__}: {exc}")
    return failures


def group_problems(
    rollout: RolloutParts, status: PlatformStatus, group: Group, role: str, image: str | None
) -> list[str]:
    """What is wrong with the group that must serve (``role``: "main" or "the new
    colour"): its version, no replica, replicas not running and ready."""
    unit = rollout.platform.terms.unit
    members = status.group(group)
    running = status.stable_image if group == "stable" else status.canary_image
    problems = []
    if image is not None and running != image:
        problems.append(f"{role} runs {running!r}, expected {image!r}")
    if not members:
        problems.append(f"{role} has no {unit}")
    for r in status.not_ready(group):
        problems.append(f"{role} {unit} {r.name} ({r.endpoint}) is not running and ready")
    return problems


def _members_problem(
    rollout: RolloutParts, status: PlatformStatus, group: Group, got: Sequence[str]
) -> str | None:
    expected = set(rollout.router.members_for(status, group))
    if set(got) == expected:
        return None
    return (
        f"{rollout.router.describe} sends {group} traffic to {sorted(got)}, but the {group} "
        f"group is {sorted(expected)}"
    )


def _probe_problems(
    rollout: RolloutParts, requests: int, baseline: ErrorBaseline
) -> tuple[int, tuple[str, ...], str | None]:
    """(requests sent, failures, problem): none sent where this process does not reach
    the router (a cluster's router without ``router.url``): the read-back is the evidence."""
    url = rollout.targets().router_url
    if not url or requests <= 0:
        return 0, (), None
    failures = tuple(probe(url, requests))
    return requests, failures, baseline.excess(failures, requests, f"the router ({url})")


def verify_main(
    rollout: RolloutParts,
    image: str | None,
    replicas: int | None,
    requests: int,
    baseline: ErrorBaseline,
) -> MainCheck:
    """Main on ``image`` with ``replicas`` ready replicas, no canary (platform and
    router), 100 % of the traffic to main's members (read back), the router's backends
    serving, and of ``requests`` requests through the router no more errors than stable's
    own rate allows (``baseline``; transport errors count).  Raises :class:`RolloutError`
    naming every difference."""
    terms = rollout.platform.terms
    status = rollout.platform.status()
    weights = rollout.router.weights()
    main = status.group("stable")
    problems = group_problems(rollout, status, "stable", terms.main, image)
    if replicas is not None and len(main) != replicas:
        problems.append(f"{terms.main} has {len(main)} {terms.unit}(s), expected {replicas}")
    if status.group("canary") or status.canary_image or weights.canary_members:
        problems.append(
            f"the canary remains: image {status.canary_image!r}, {terms.unit}s "
            f"{[r.name for r in status.group('canary')]}, router members "
            f"{list(weights.canary_members)}"
        )
    if (weights.stable, weights.canary) != (100, 0):
        problems.append(
            f"{rollout.router.describe} applies {weights}, expected stable 100% / canary 0%"
        )
    members = _members_problem(rollout, status, "stable", weights.stable_members)
    if members:
        problems.append(members)
    problems += rollout.router.backend_problems(status)
    sent, failures = _probe_when_settled(rollout, requests, baseline, problems)
    if problems:
        raise RolloutError(
            f"the {terms.main} is not in the expected state:\n  "
            + "\n  ".join(problems)
            + f"\n{terms.listing}: {status.describe()}"
        )
    return MainCheck(status, weights, sent, failures)


def _probe_when_settled(
    rollout: RolloutParts, requests: int, baseline: ErrorBaseline, problems: list[str]
) -> tuple[int, tuple[str, ...]]:
    """Requests through the router once the state read back has no problem (a probe of
    a wrong state would only add noise to the message); an excess of failures over the
    baseline is appended to ``problems``.  The requests sent and their failures."""
    if problems:
        return 0, ()
    sent, failures, excess = _probe_problems(rollout, requests, baseline)
    if excess:
        problems.append(excess)
    return sent, failures


def verify_live(
    rollout: RolloutParts, image: str, requests: int, baseline: ErrorBaseline
) -> LiveCheck:
    """After a blue/green switch: the new colour (the canary group) runs ``image`` with
    ready replicas and takes 100 % of the traffic (read back, members included); of
    ``requests`` requests through the router no more fail than ``baseline`` allows.
    Raises :class:`GateCheckFailed` naming every difference."""
    status = rollout.platform.status()
    weights = rollout.router.weights()
    problems = group_problems(rollout, status, "canary", "the new colour", image)
    if (weights.stable, weights.canary) != (0, 100):
        problems.append(
            f"{rollout.router.describe} applies {weights}, expected the new colour at 100%"
        )
    if not weights.canary_members:
        problems.append(f"{rollout.router.describe} has no member for the new colour")
    sent, failures = _probe_when_settled(rollout, requests, baseline, problems)
    if problems:
        raise GateCheckFailed(
            "after the switch the new colour does not serve as expected:\n  "
            + "\n  ".join(problems)
            + f"\n{rollout.platform.terms.listing}: {status.describe()}"
        )
    return LiveCheck(status, weights, sent, failures)

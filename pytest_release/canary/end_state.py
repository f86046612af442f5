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
from typing import TYPE_CHECKING

from pytest_release.canary.platform import Group, PlatformStatus
from pytest_release.errors import GateCheckFailed, RolloutError

if TYPE_CHECKING:
    from pytest_release.canary.rollout import ErrorBaseline, MainCheck, Rollout
    from pytest_release.canary.router import Weights

__all__ = ["LiveCheck", "group_problems", "probe", "verify_live", "verify_main"]


@dataclass(frozen=True)
class LiveCheck:
    """What :func:`verify_live` found after a switch."""

    status: PlatformStatus
    weights: Weights
    requests: int
    failures: tuple[str, ...]

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
    :func:`~pytest_release.canary.rollout.probe_router` (one kept-alive connection); HTTPS
    (a Cloud Run service URL) through httpx."""
    if not url.startswith("https://"):
        from pytest_release.canary.rollout import probe_router

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
    rollout: Rollout, status: PlatformStatus, group: Group, role: str, image: str | None
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
    rollout: Rollout, status: PlatformStatus, group: Group, got: Sequence[str]
) -> str | None:
    expected = set(rollout.router.members_for(status, group))
    if set(got) == expected:
        return None
    return (
        f"{rollout.router.describe} sends {group} traffic to {sorted(got)}, but the {group} "
        f"group is {sorted(expected)}"
    )


def _probe_problems(
    rollout: Rollout, requests: int, baseline: ErrorBaseline
) -> tuple[int, tuple[str, ...], str | None]:
    """(requests sent, failures, problem): none sent where this process does not reach
    the router (a cluster's router without ``router.url``): the read-back is the evidence."""
    url = rollout.targets().router_url
    if not url or requests <= 0:
        return 0, (), None
    failures = tuple(probe(url, requests))
    return requests, failures, baseline.excess(failures, requests, f"the router ({url})")


def verify_main(
    rollout: Rollout,
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
    from pytest_release.canary.rollout import MainCheck

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
    rollout: Rollout, requests: int, baseline: ErrorBaseline, problems: list[str]
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


def verify_live(rollout: Rollout, image: str, requests: int, baseline: ErrorBaseline) -> LiveCheck:
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

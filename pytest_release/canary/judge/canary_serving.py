"""``canary_serving``: the canary still has a ready replica while it takes traffic.

Why the hold does not wait for the end of its interval to judge this: a Kubernetes
router drops more than the canary's share once the canary Service has no serving
endpoint.  Traefik's kubernetescrd provider (v3.6, ``loadServers``: no server and no
``allowEmptyServices`` is an error) leaves the whole weighted TraefikService out of its
configuration, and the route answers 404 for every request, stable's too, until the
canary leaves the TraefikService.  So the hold watches the platform's status reports
(read every ``sampler.status_interval``) and, the moment the newest report has canary
replicas and none of them running and ready (a failing readiness probe, a crash-looping
or OOM-killed container), takes the canary out of the router at once and fails the
interval with this check: a canary that cannot serve fails, it is never insufficient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.verdicts import CheckResult, format_window
from pytest_release.canary.samples import ReplicaStatus

NAME = "canary_serving"


@dataclass(frozen=True)
class UnservedCanary:
    """A platform report in which no canary replica was running and ready."""

    at: float  # the report's timestamp
    replicas: tuple[ReplicaStatus, ...]  # the canary replicas of that report

    def describe(self) -> str:
        parts = []
        for replica in self.replicas:
            state = (
                f"{'running' if replica.running else 'not running'}, "
                f"{'ready' if replica.ready else 'not ready'}, {replica.restarts} restart(s)"
            )
            why = f": {'; '.join(replica.events)}" if replica.events else ""
            parts.append(f"{replica.name} ({state}){why}")
        return "; ".join(parts)


def unserved_canary(statuses: Sequence[ReplicaStatus]) -> UnservedCanary | None:
    """The newest report in ``statuses`` when it has canary replicas and none of them is
    running and ready; None otherwise (also when it has no canary replica at all: a
    replica being replaced is not reported as missing here, the restarts check and the
    requests see it)."""
    if not statuses:
        return None
    newest = max(s.timestamp for s in statuses)
    canary = tuple(s for s in statuses if s.timestamp == newest and s.version == "canary")
    if not canary or any(s.running and s.ready for s in canary):
        return None
    return UnservedCanary(newest, canary)


def canary_serving_result(
    found: UnservedCanary, router: str, window: tuple[float, float]
) -> CheckResult:
    """The failed check of the interval in which the hold found ``found``; ``router``
    says what taking the canary out of the router did (the split read back, or why it
    failed)."""
    start, end = window
    return CheckResult(
        name=NAME,
        verdict="fail",
        value=0.0,
        threshold=1.0,
        unit="ready canary replicas",
        window_start=start,
        window_end=end,
        samples=len(found.replicas),
        message=(
            f"platform: no canary replica was running and ready over "
            f"{format_window(start, end)} ({found.describe()}); the hold took the canary out "
            f"of the router at once so that stable keeps serving: {router}"
        ),
        details=(("replicas", found.describe()), ("router", router)),
        source="platform",
    )

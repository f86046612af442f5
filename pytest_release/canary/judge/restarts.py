"""``restarts``: restarts of canary replicas, from the platform's status reports, are at
most ``judge.max_restarts`` over the hold."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_release.canary.judge.count_limit import count_result, no_evidence
from pytest_release.canary.judge.evidence import Evidence
from pytest_release.canary.judge.verdicts import CheckResult, format_window


@dataclass(frozen=True)
class Restarts:
    limit: int
    name: str = "restarts"
    needs: tuple[str, ...] = ("platform",)

    def result(self, evidence: Evidence) -> CheckResult:
        statuses, limit = evidence.statuses, self.limit
        start, end = evidence.start, evidence.end
        canary = [s for s in statuses if s.version == "canary"]
        window = format_window(start, end)
        if not canary:
            return no_evidence(
                self.name,
                limit,
                "restarts",
                (start, end),
                "canary restarts: the platform reported no canary replica",
                "max_restarts",
            )
        per_replica: dict[str, int] = {}
        events: dict[str, tuple[str, ...]] = {}  # the newest report's, per replica
        for status in sorted(canary, key=lambda s: s.timestamp):
            per_replica[status.name] = max(per_replica.get(status.name, 0), status.restarts)
            events[status.name] = status.events or events.get(status.name, ())
        total = sum(per_replica.values())
        failed = total > limit
        restarted = ", ".join(f"{name} x{count}" for name, count in per_replica.items() if count)
        detail = f" ({restarted})" if restarted else ""
        return count_result(
            self.name,
            total,
            limit,
            "restarts",
            (start, end),
            len(canary),
            f"canary replicas restarted {total} times{detail} "
            f"{'>' if failed else '<='} {limit} over {window} "
            f"({len(per_replica)} replicas, {len(canary)} status reports)"
            + "".join(f"\n  {n}: {'; '.join(e)}" for n, e in events.items() if e),
            source="platform",
        )

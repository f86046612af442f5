"""``health_failure_share``: the share of failed /health probes of each canary replica is
at most ``judge.max_health_failure_share``, judged like the error rate (the worst
replica is tested; Bonferroni over the replicas; see :mod:`.statistics`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, Window
from pytest_release.canary.judge.statistics import ShareTest, ThresholdPlan, share_test
from pytest_release.canary.judge.threshold import ThresholdFinding, threshold_result
from pytest_release.canary.judge.verdicts import (
    CheckResult,
    format_percent,
    format_window,
    number_text,
)
from pytest_release.canary.samples import Sample


@dataclass(frozen=True)
class HealthFailureShare:
    config: JudgeConfig
    plan: ThresholdPlan
    name: str = "health_failure_share"
    needs: tuple[str, ...] = ("sampler",)

    def result(self, evidence: Evidence) -> CheckResult:
        everything = evidence.samples
        hold_start, start, end = evidence.hold_start, evidence.start, evidence.end
        limit = self.config.max_health_failure_share
        assert limit is not None
        probes = [s for s in everything if s.kind == "health" and s.timestamp < end]
        canary = [s for s in probes if s.target == "canary"]
        stable = [s for s in probes if s.target == "stable"]
        in_window = sum(1 for s in canary if s.timestamp >= start)
        # A loaded sampler can miss the probes of one short interval: the hold's probes
        # so far are the evidence; none at all is insufficient.
        if not canary:
            return CheckResult.insufficient(
                "health_failure_share",
                threshold=limit * 100.0,
                unit="%",
                window=(start, end),
                samples=in_window,
                message=f"canary health: no /health probe of the canary since the hold began "
                f"({format_window(hold_start, end)}; set judge.max_health_failure_share = "
                "false to disable this check)",
            )
        by_replica: dict[str, list[Sample]] = {}
        for probe in canary:
            by_replica.setdefault(probe.replica or "canary", []).append(probe)
        details: list[tuple[str, str]] = []
        per_replica: list[str] = []
        for replica, replica_probes in sorted(by_replica.items()):
            failed = sum(1 for s in replica_probes if not s.ok)
            details += [
                (f"{replica}.probes", str(len(replica_probes))),
                (f"{replica}.failed", str(failed)),
                (f"{replica}.failed_share", number_text(failed / len(replica_probes))),
            ]
            per_replica.append(
                f"{replica} {failed} of {len(replica_probes)} failed "
                f"({format_percent(failed / len(replica_probes))})"
            )
        # Bonferroni over the replicas too: the worst replica is tested.
        replicas = len(by_replica)
        plan = self.plan.split(replicas)
        worst: tuple[ShareTest, str] | None = None
        for replica, replica_probes in by_replica.items():
            windows = [
                Window("since the hold began", hold_start, end, tuple(replica_probes), ()),
            ]
            if hold_start < start:
                recent = tuple(s for s in replica_probes if s.timestamp >= start)
                windows.append(Window("in the interval", start, end, recent, ()))

            def count(chosen: Sequence[Sample]) -> tuple[int, int]:
                return sum(1 for s in chosen if not s.ok), len(chosen)

            test = share_test(windows, limit, count, plan, evidence.look)
            if worst is None or (test.credible, test.lower) > (worst[0].credible, worst[0].lower):
                worst = (test, replica)
        assert worst is not None
        test, replica = worst
        stable_failed = sum(1 for s in stable if not s.ok)
        stable_share = stable_failed / len(stable) if stable else None
        found = ThresholdFinding(
            name="health_failure_share",
            test=test,
            limit=limit,
            value=test.k / test.n * 100.0 if test.n else 0.0,
            threshold=limit * 100.0,
            unit="%",
            estimate=f"canary /health failures on {replica} "
            f"{format_percent(test.k / test.n if test.n else 0.0)} of probes",
            over=f"> {format_percent(limit)}",
            within=f"<= {format_percent(limit)}",
            stable_estimate="no stable probes"
            if stable_share is None
            else f"stable {format_percent(stable_share)} of {len(stable)} probes failed",
            stable_over=stable_share is not None and stable_share > limit,
            counts="; ".join(per_replica),
            details=tuple(details),
        )
        return threshold_result(self.config, found)

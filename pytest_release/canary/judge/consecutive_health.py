"""``health_consecutive_failures``: no more than ``judge.max_consecutive_health_failures``
/health probes of one canary replica fail in a row (runs measured over the whole hold)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_release.canary.judge.count_limit import count_result, no_evidence
from pytest_release.canary.judge.evidence import Evidence
from pytest_release.canary.judge.verdicts import CheckResult, clock_text, format_window
from pytest_release.canary.samples import Sample


@dataclass(frozen=True)
class ConsecutiveHealthFailures:
    limit: int
    name: str = "health_consecutive_failures"
    needs: tuple[str, ...] = ("sampler",)

    def result(self, evidence: Evidence) -> CheckResult:
        everything, limit = evidence.samples, self.limit
        start, end = evidence.start, evidence.end
        probes = [s for s in everything if s.target == "canary" and s.kind == "health"]
        in_window = sum(1 for s in probes if s.timestamp >= start)
        window = format_window(start, end)
        # A loaded sampler can miss the probes of one short interval; runs of failures
        # are measured over the whole hold, so only no probe at all is insufficient.
        if not probes:
            return no_evidence(
                self.name,
                limit,
                "probes",
                (start, end),
                "canary health: no /health probe of the canary",
                "max_consecutive_health_failures",
            )
        by_replica: dict[str, list[Sample]] = {}
        for probe in probes:
            by_replica.setdefault(probe.replica or "canary", []).append(probe)
        worst = (0, start, start, "")
        for replica, replica_probes in by_replica.items():
            run = 0
            run_start = run_end = 0.0
            pending: list[Sample | None] = [*replica_probes, None]
            for maybe in pending:
                if maybe is not None and not maybe.ok:
                    probe = maybe
                    if run == 0:
                        run_start = probe.timestamp
                    run += 1
                    run_end = probe.timestamp
                    continue
                # A run ended (or the probes did): count it if it reaches this window.
                if run and run_end >= start and run > worst[0]:
                    worst = (run, run_start, run_end, replica)
                run = 0
        longest, run_start, run_end, replica = worst
        failed = longest > limit
        where = (
            f" on {replica} from {clock_text(run_start)} to {clock_text(run_end)} UTC"
            if longest
            else ""
        )
        return count_result(
            self.name,
            longest,
            limit,
            "probes",
            (run_start, run_end) if longest else (start, end),
            in_window,
            f"canary /health failed {longest} times in a row{where} "
            f"({'>' if failed else '<='} {limit} allowed; {in_window} probes over {window})",
        )

"""``compare_latency`` on the sampler's per-request latencies: the canary's latencies are
not stochastically greater than stable's stretched by the tolerance (``stable * (1 +
latency_tolerance) + latency_tolerance_ms``), by a one-sided Mann-Whitney U test at the
levels of the spending plan (:mod:`.statistics`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.comparison_look import compare_at_look, compared, too_few_samples
from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, Window
from pytest_release.canary.judge.statistics import ComparisonPlan
from pytest_release.canary.judge.verdicts import CheckResult, format_ms, format_window
from pytest_release.canary.stats import mann_whitney_greater, median, percentile


@dataclass(frozen=True)
class CompareLatency:
    config: JudgeConfig
    plan: ComparisonPlan
    name: str = "compare_latency"
    needs: tuple[str, ...] = ("sampler",)  # per-request latencies: the sampler's only

    def result(self, evidence: Evidence) -> CheckResult:
        return compare_at_look(
            evidence, self.needs, self.name, "compare_latency", self.plan, self._tested
        )

    def _tested(self, windows: Sequence[Window], alphas: Sequence[float]) -> CheckResult:
        cmp = self.config.comparison
        tested: list[tuple[float, float, Window, list[float], list[float]]] = []
        for window, alpha in zip(windows, alphas, strict=True):
            lat_c = [s.latency_ms for s in window.canary if s.latency_ms is not None]
            lat_s = [s.latency_ms for s in window.stable if s.latency_ms is not None]
            if min(len(lat_c), len(lat_s)) < cmp.min_samples or alpha <= 0.0:
                continue
            shifted = [v * (1.0 + cmp.latency_tolerance) + cmp.latency_tolerance_ms for v in lat_s]
            p = mann_whitney_greater(lat_c, shifted).p_value
            tested.append((p, alpha, window, lat_c, lat_s))
        if not tested:
            cumulative = windows[0]
            n_c = sum(1 for s in cumulative.canary if s.latency_ms is not None)
            n_s = sum(1 for s in cumulative.stable if s.latency_ms is not None)
            return too_few_samples(
                "compare_latency",
                ("latency", "responses"),
                cumulative,
                (n_c, n_s),
                alphas[0],
                cmp.min_samples,
            )
        # The window furthest below its level (a failing one if any), else the cumulative.
        p, alpha, window, lat_c, lat_s = min(tested, key=lambda t: t[0] / t[1])
        failed = p < alpha
        relation = "significantly slower than" if failed else "not significantly slower than"
        tolerance = (
            f"stable +{cmp.latency_tolerance * 100:.0f}% +{format_ms(cmp.latency_tolerance_ms)}"
        )
        return compared(
            "compare_latency",
            p,
            alpha,
            window,
            len(lat_c) + len(lat_s),
            f"canary latency (median {format_ms(median(lat_c))}, p95 "
            f"{format_ms(percentile(lat_c, 95.0))}) {relation} {tolerance} "
            f"(median {format_ms(median(lat_s))}, p95 "
            f"{format_ms(percentile(lat_s, 95.0))}, same window, same sampler; Mann-Whitney "
            f"one-sided p={p:.2g} {'<' if failed else '>='} alpha {alpha:.2g}) over "
            f"{format_window(window.start, window.end)} ({window.label}; n={len(lat_c)} "
            f"canary, {len(lat_s)} stable)",
        )

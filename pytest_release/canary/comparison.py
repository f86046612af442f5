"""Canary versus stable: Fisher's exact test on errors and Mann-Whitney on latency, both
in the same windows, measured by the same sampler."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_release.canary.judge_base import JudgeBase, _Window
from pytest_release.canary.stats import (
    fisher_exact_greater,
    mann_whitney_greater,
    median,
    percentile,
)
from pytest_release.canary.verdicts import (
    CheckResult,
    format_ms,
    format_percent,
    format_window,
)


class CanaryComparison(JudgeBase):
    """Canary versus stable: Fisher's exact test on errors and Mann-Whitney on latency, both"""

    # -- comparison --------------------------------------------------------------------
    def _compare(
        self, windows: Sequence[_Window], hold_start: float, end: float, look: int
    ) -> list[CheckResult]:
        cmp = self.config.comparison
        cumulative = windows[0]
        alpha = self._look_alpha(self.alpha_per_test, windows)

        def insufficient(name: str, n_c: int, n_s: int, why: str) -> CheckResult:
            return CheckResult.insufficient(
                name,
                threshold=alpha,
                unit="p",
                window=(hold_start, end),
                samples=n_c + n_s,
                message=why,
            )

        n_c, n_s = len(cumulative.canary), len(cumulative.stable)
        beyond = self._beyond_plan(look, f"judge.comparison.alpha {cmp.alpha}")
        if beyond:
            return [
                insufficient("compare_error_rate", n_c, n_s, beyond),
                insufficient("compare_latency", n_c, n_s, beyond),
            ]
        return [self._compare_errors(windows, alpha), self._compare_latency(windows, alpha)]

    def _compare_errors(self, windows: Sequence[_Window], alpha: float) -> CheckResult:
        cmp = self.config.comparison
        tested: list[tuple[float, _Window, int, int, int, int]] = []
        for window in windows:
            n_c, n_s = len(window.canary), len(window.stable)
            if min(n_c, n_s) < cmp.min_samples:
                continue
            e_c = sum(1 for s in window.canary if not s.ok)
            e_s = sum(1 for s in window.stable if not s.ok)
            p = fisher_exact_greater(e_c, n_c, e_s, n_s)
            if e_c / n_c - e_s / n_s <= cmp.error_rate_margin:
                p = max(p, alpha)  # within the margin: not a failure whatever p says
            tested.append((p, window, e_c, n_c, e_s, n_s))
        if not tested:
            cumulative = windows[0]
            n_c, n_s = len(cumulative.canary), len(cumulative.stable)
            return CheckResult.insufficient(
                "compare_error_rate",
                threshold=alpha,
                unit="p",
                window=(cumulative.start, cumulative.end),
                samples=n_c + n_s,
                message=f"canary vs stable error rate: {n_c} canary and {n_s} stable requests "
                f"over {format_window(cumulative.start, cumulative.end)}, need "
                f"{cmp.min_samples} each (judge.comparison.min_samples)",
            )
        p, window, e_c, n_c, e_s, n_s = min(tested, key=lambda t: t[0])
        rate_c, rate_s = e_c / n_c, e_s / n_s
        failed = p < alpha
        relation = "significantly higher than" if failed else "not significantly above"
        margin = (
            f", margin {format_percent(cmp.error_rate_margin)}" if cmp.error_rate_margin else ""
        )
        return CheckResult(
            name="compare_error_rate",
            verdict="fail" if failed else "pass",
            value=p,
            threshold=alpha,
            unit="p",
            window_start=window.start,
            window_end=window.end,
            samples=n_c + n_s,
            message=f"canary error rate {format_percent(rate_c)} {relation} stable "
            f"{format_percent(rate_s)} (Fisher exact one-sided p={p:.2g} "
            f"{'<' if failed else '>='} alpha {alpha:.2g}{margin}) over "
            f"{format_window(window.start, window.end)} ({window.label}; n={n_c} canary, "
            f"{n_s} stable)",
        )

    def _compare_latency(self, windows: Sequence[_Window], alpha: float) -> CheckResult:
        cmp = self.config.comparison
        tested: list[tuple[float, _Window, list[float], list[float]]] = []
        for window in windows:
            lat_c = [s.latency_ms for s in window.canary if s.latency_ms is not None]
            lat_s = [s.latency_ms for s in window.stable if s.latency_ms is not None]
            if min(len(lat_c), len(lat_s)) < cmp.min_samples:
                continue
            shifted = [v * (1.0 + cmp.latency_tolerance) + cmp.latency_tolerance_ms for v in lat_s]
            tested.append((mann_whitney_greater(lat_c, shifted).p_value, window, lat_c, lat_s))
        if not tested:
            cumulative = windows[0]
            n_c = sum(1 for s in cumulative.canary if s.latency_ms is not None)
            n_s = sum(1 for s in cumulative.stable if s.latency_ms is not None)
            return CheckResult.insufficient(
                "compare_latency",
                threshold=alpha,
                unit="p",
                window=(cumulative.start, cumulative.end),
                samples=n_c + n_s,
                message=f"canary vs stable latency: {n_c} canary and {n_s} stable responses "
                f"over {format_window(cumulative.start, cumulative.end)}, need "
                f"{cmp.min_samples} each (judge.comparison.min_samples)",
            )
        p, window, lat_c, lat_s = min(tested, key=lambda t: t[0])
        failed = p < alpha
        relation = "significantly slower than" if failed else "not significantly slower than"
        tolerance = (
            f"stable +{cmp.latency_tolerance * 100:.0f}% +{format_ms(cmp.latency_tolerance_ms)}"
        )
        return CheckResult(
            name="compare_latency",
            verdict="fail" if failed else "pass",
            value=p,
            threshold=alpha,
            unit="p",
            window_start=window.start,
            window_end=window.end,
            samples=len(lat_c) + len(lat_s),
            message=f"canary latency (median {format_ms(median(lat_c))}, p95 "
            f"{format_ms(percentile(lat_c, 95.0))}) {relation} {tolerance} "
            f"(median {format_ms(median(lat_s))}, p95 "
            f"{format_ms(percentile(lat_s, 95.0))}, same window, same sampler; Mann-Whitney "
            f"one-sided p={p:.2g} {'<' if failed else '>='} alpha {alpha:.2g}) over "
            f"{format_window(window.start, window.end)} ({window.label}; n={len(lat_c)} "
            f"canary, {len(lat_s)} stable)",
        )

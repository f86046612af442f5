"""``compare_error_rate``: the canary's error rate is not significantly higher than
stable's in the same windows (Fisher's exact test, one-sided), on all the requests the
chosen sources saw; it fails only when also ``canary rate - stable rate >
judge.comparison.error_rate_margin``.  The level of each look and window comes from the
spending plan of :mod:`.statistics`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.comparison_look import compare_at_look, compared, too_few_samples
from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, Window
from pytest_release.canary.judge.statistics import ComparisonPlan
from pytest_release.canary.judge.verdicts import CheckResult, format_percent, format_window
from pytest_release.canary.stats import fisher_exact_greater


@dataclass(frozen=True)
class CompareErrorRate:
    config: JudgeConfig
    plan: ComparisonPlan
    needs: tuple[str, ...] = ("sampler",)
    name: str = "compare_error_rate"

    def result(self, evidence: Evidence) -> CheckResult:
        return compare_at_look(
            evidence, self.needs, self.name, "compare_error_rate", self.plan, self._tested
        )

    def _tested(self, windows: Sequence[Window], alphas: Sequence[float]) -> CheckResult:
        cmp = self.config.comparison
        tested: list[tuple[float, float, Window, int, int, int, int]] = []
        for window, alpha in zip(windows, alphas, strict=True):
            n_c, n_s = len(window.canary), len(window.stable)
            if min(n_c, n_s) < cmp.min_samples or alpha <= 0.0:
                continue
            e_c = sum(1 for s in window.canary if not s.ok)
            e_s = sum(1 for s in window.stable if not s.ok)
            p = fisher_exact_greater(e_c, n_c, e_s, n_s)
            if e_c / n_c - e_s / n_s <= cmp.error_rate_margin:
                p = max(p, alpha)  # within the margin: not a failure whatever p says
            tested.append((p, alpha, window, e_c, n_c, e_s, n_s))
        if not tested:
            cumulative = windows[0]
            n_c, n_s = len(cumulative.canary), len(cumulative.stable)
            return too_few_samples(
                "compare_error_rate",
                ("error rate", "requests"),
                cumulative,
                (n_c, n_s),
                alphas[0],
                cmp.min_samples,
            )
        # The window furthest below its level (a failing one if any), else the cumulative.
        p, alpha, window, e_c, n_c, e_s, n_s = min(tested, key=lambda t: t[0] / t[1])
        rate_c, rate_s = e_c / n_c, e_s / n_s
        failed = p < alpha
        relation = "significantly higher than" if failed else "not significantly above"
        margin = (
            f", margin {format_percent(cmp.error_rate_margin)}" if cmp.error_rate_margin else ""
        )
        return compared(
            "compare_error_rate",
            p,
            alpha,
            window,
            n_c + n_s,
            f"canary error rate {format_percent(rate_c)} {relation} stable "
            f"{format_percent(rate_s)} (Fisher exact one-sided p={p:.2g} "
            f"{'<' if failed else '>='} alpha {alpha:.2g}{margin}) over "
            f"{format_window(window.start, window.end)} ({window.label}; n={n_c} canary, "
            f"{n_s} stable)",
        )

"""One look of a canary-versus-stable comparison, whatever its test: the joined evidence
of the chosen sources, the look's windows and their levels from the spending plan, and
the result labelled with the sources that contributed.  The checks
(:mod:`.compare_errors`, :mod:`.compare_latency`) supply only their test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from pytest_release.canary.judge.evidence import Evidence, Window
from pytest_release.canary.judge.labels import labelled, unavailable
from pytest_release.canary.judge.statistics import ComparisonPlan
from pytest_release.canary.judge.verdicts import CheckResult, format_window

WindowTest = Callable[[Sequence[Window], Sequence[float]], CheckResult]


def compare_at_look(
    evidence: Evidence,
    sources: tuple[str, ...],
    name: str,
    check: str,
    plan: ComparisonPlan,
    test: WindowTest,
) -> CheckResult:
    """``test`` run on the look's windows at the plan's levels; insufficient (never a
    pass) once the look is beyond the plan.  ``name`` labels the result, ``check`` is the
    check's kind (``compare_error_rate``, ``compare_latency``)."""
    requests = evidence.joined(sources)
    start, end = evidence.start, evidence.end
    if requests.unavailable:
        return unavailable(requests, name, start, end)
    windows = requests.windows(start, end)
    beyond = plan.beyond_plan(evidence.look)
    if beyond:
        return labelled(
            requests,
            name,
            CheckResult.insufficient(
                check,
                threshold=plan.cumulative_alpha(plan.planned_looks),
                unit="p",
                window=(requests.hold_start, end),
                samples=len(requests.everything),
                message=beyond,
            ),
        )
    alphas = plan.window_alphas(evidence.look, len(windows))
    result = test(windows, alphas)
    return labelled(requests, name, replace(result, details=requests.contributions()))


def too_few_samples(
    check: str,
    compared: tuple[str, str],
    window: Window,
    counts: tuple[int, int],
    alpha: float,
    need: int,
) -> CheckResult:
    """``check`` insufficient, pending: the cumulative ``window`` has fewer than ``need``
    of the canary's or stable's samples (``counts``: canary, stable), so no window could
    be tested (at the level ``alpha`` for the cumulative one).  ``compared`` names what is
    compared and its samples ("error rate", "requests")."""
    (subject, unit), (n_c, n_s) = compared, counts
    return CheckResult.insufficient(
        check,
        threshold=alpha,
        unit="p",
        window=(window.start, window.end),
        samples=n_c + n_s,
        message=f"canary vs stable {subject}: {n_c} canary and {n_s} stable {unit} over "
        f"{format_window(window.start, window.end)}, need {need} each "
        "(judge.comparison.min_samples)",
        pending=True,
    )


def compared(
    check: str, p: float, alpha: float, window: Window, samples: int, message: str
) -> CheckResult:
    """``check``'s result from its test of ``window`` (the one furthest below its level):
    a fail when the test's ``p`` is below the window's level ``alpha``."""
    return CheckResult(
        name=check,
        verdict="fail" if p < alpha else "pass",
        value=p,
        threshold=alpha,
        unit="p",
        window_start=window.start,
        window_end=window.end,
        samples=samples,
        message=message,
    )

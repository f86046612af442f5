"""The verdict of a threshold check judged with evidence (error rate, p95 latency, share of
failed /health probes): a one-sided test of "the canary's share is at most the limit"
(:func:`.statistics.share_test`), with stable as the control."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.statistics import ShareTest
from pytest_release.canary.judge.verdicts import (
    CheckResult,
    Verdict,
    format_confidence,
    format_percent,
    format_window,
    threshold_text,
)


@dataclass(frozen=True)
class ThresholdFinding:
    """What a threshold check found and how its message names it."""

    name: str
    test: ShareTest
    limit: float
    value: float | None
    threshold: float
    unit: str
    estimate: str
    over: str
    within: str
    stable_estimate: str
    stable_over: bool
    counts: str
    details: tuple[tuple[str, str], ...] = ()


def threshold_result(config: JudgeConfig, found: ThresholdFinding) -> CheckResult:
    """fail when the lower confidence bound is above the limit (unless stable is over it
    too: then ``judge.stable_exceeds`` decides), else pass."""
    test = found.test
    lower = test.lower
    confidence = f"{format_confidence(test.alpha)} {test.method} confidence"
    window = test.window
    where = f"over {format_window(window.start, window.end)} ({window.label})"
    credible = test.credible
    verdict: Verdict
    if credible and found.stable_over:
        mode = config.stable_exceeds
        verdict = "fail" if mode == "fail" else "insufficient"
        message = (
            f"{found.estimate} {found.over}, but stable also exceeds "
            f"{threshold_text(found.name, found.limit, found.unit)} ({found.stable_estimate}) "
            f"in the same window: the environment, not the canary (judge.stable_exceeds = "
            f"{mode}) {where} ({found.counts})"
        )
    elif credible:
        verdict = "fail"
        message = (
            f"{found.estimate} {found.over}: the lower {confidence} bound "
            f"{format_percent(lower)} is above {format_percent(found.limit)} {where} "
            f"({found.counts})"
        )
    else:
        verdict = "pass"
        message = (
            f"{found.estimate} consistent with {found.within} (lower {confidence} bound "
            f"{format_percent(lower)}) {where} ({found.counts})"
        )
    return CheckResult(
        name=found.name,
        verdict=verdict,
        value=found.value,
        threshold=found.threshold,
        unit=found.unit,
        window_start=window.start,
        window_end=window.end,
        samples=test.n,
        message=message,
        stable_exceeds=credible and found.stable_over,
        details=found.details,
    )


def nothing_since_the_hold_began(
    config: JudgeConfig,
    name: str,
    what: str,
    threshold: float,
    unit: str,
    window: tuple[float, float],
) -> CheckResult:
    """Insufficient, waiting: no canary ``what`` (requests, responses) since the hold
    began at ``window[0]``."""
    return CheckResult.insufficient(
        name,
        threshold=threshold,
        unit=unit,
        window=window,
        samples=0,
        message=f"no canary {what} since the hold began ({format_window(*window)}), need at "
        f"least {config.min_requests} (judge.min_requests)",
        pending=True,
    )


def pass_needs_the_minimum(
    config: JudgeConfig, result: CheckResult, so_far: int, what: str, window: tuple[float, float]
) -> CheckResult:
    """``result``, unless it passes on fewer than ``judge.min_requests`` canary ``what``
    since the hold began: then insufficient, waiting.  The test is valid at any sample
    size, so a credible excess fails at once (a crash loop at the first look); a pass
    needs the hold's minimum."""
    if result.verdict != "pass" or so_far >= config.min_requests:
        return result
    return CheckResult.insufficient(
        result.name,
        threshold=result.threshold,
        unit=result.unit,
        window=window,
        samples=so_far,
        message=f"{result.message}; but only {so_far} canary {what} since the hold began "
        f"({format_window(*window)}), need at least {config.min_requests} to pass "
        "(judge.min_requests)",
        pending=True,
    )

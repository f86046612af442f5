"""The canary judge over synthetic samples: every check's pass/fail/insufficient path,
stage aggregation, JUnit properties, and the comparison's false-alarm rate."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence

import pytest
from pydantic import ValidationError

from pytest_release.canary.judge import (
    CanaryVerdict,
    CheckResult,
    ComparisonConfig,
    Judge,
    JudgeConfig,
    planned_looks,
)
from pytest_release.canary.samples import Sample
from tests.canary.judge_support import (
    T0,
    health,
    healthy_interval,
    http,
    probes,
    status,
    traffic,
)

MINUTE = 60.0
OK_STATUS = [status(T0 + 30)]


def judge(**config: object) -> Judge:
    return Judge(JudgeConfig.model_validate(config))


def check(verdict: CanaryVerdict, name: str) -> CheckResult:
    result = verdict.check(name)
    assert result is not None, f"no check {name!r} in {[c.name for c in verdict.checks]}"
    return result


def only_failures(verdict: CanaryVerdict) -> set[str]:
    return {c.name for c in verdict.checks if c.verdict == "fail"}


# -- thresholds ---------------------------------------------------------------------------


def test_healthy_interval_passes_every_check() -> None:
    verdict = judge().judge_interval(healthy_interval(T0, T0 + MINUTE), OK_STATUS, T0, T0 + MINUTE)
    assert verdict.verdict == "pass"
    assert {c.name for c in verdict.checks} == {
        "error_rate",
        "p95_latency",
        "restarts",
        "health_failure_share",
        "health_consecutive_failures",
        "no_success",
        "sustained_error_rate",
        "slow_responses",
        "compare_error_rate",
        "compare_latency",
    }
    assert all(c.verdict == "pass" for c in verdict.checks)
    assert verdict.failure_message() == "all 10 canary checks passed over 12:00:00-12:01:00 UTC"


def test_error_rate_above_threshold_fails_with_value_threshold_window_and_count() -> None:
    samples = [
        *traffic(T0, T0 + MINUTE, "canary", fail=lambda i: i % 10 == 0),  # 12 of 120 = 10 %
        *traffic(T0, T0 + MINUTE, "stable", per_second=6.0),
        *probes(T0, T0 + MINUTE),
    ]
    verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    result = check(verdict, "error_rate")
    assert result.verdict == "fail"
    assert (result.value, result.threshold, result.unit, result.samples) == (10.0, 1.0, "%", 120)
    # The hold so far, by the always-valid test at 40 % of the check's share of
    # judge.alpha: 0.005 / 3 checks * 0.4 = 6.7e-4.
    assert result.message == (
        "canary error rate 10.0% > 1.0%: the lower 99.9% always-valid confidence bound 2.3% "
        "is above "
        "1.0% over 12:00:00-12:01:00 UTC (since the hold began) "
        "(n=120, 12 errors; stable n=360, 0 errors)"
    )
    assert verdict.verdict == "fail"
    assert result.message in verdict.failure_message()


def test_error_rate_exactly_at_the_maximum_passes() -> None:
    samples = [*traffic(T0, T0 + 50, "canary", fail=lambda i: i == 0), *probes(T0, T0 + 50)]
    result = check(
        judge(comparison={"enabled": False}).judge_interval(samples, OK_STATUS, T0, T0 + 50),
        "error_rate",
    )
    assert result.samples == 100
    assert result.verdict == "pass"


def test_too_few_requests_is_insufficient_not_pass() -> None:
    samples = [*traffic(T0, T0 + MINUTE, "canary", per_second=1 / 6), *probes(T0, T0 + MINUTE)]
    verdict = judge(comparison={"enabled": False}).judge_interval(
        samples, OK_STATUS, T0, T0 + MINUTE
    )
    assert check(verdict, "error_rate").verdict == "insufficient"
    assert check(verdict, "p95_latency").verdict == "insufficient"
    assert verdict.verdict == "insufficient"
    message = verdict.failure_message()
    assert message.startswith("insufficient evidence over 12:00:00-12:01:00 UTC:")
    assert (
        "only 10 canary requests since the hold began (12:00:00-12:01:00 UTC), need at least 20"
        in message
    )
    # Too few so far is not final: a later look of the hold can decide.
    assert check(verdict, "error_rate").pending
    assert verdict.pending


def test_min_requests_is_configurable() -> None:
    samples = [*traffic(T0, T0 + MINUTE, "canary", per_second=1 / 6), *probes(T0, T0 + MINUTE)]
    verdict = judge(min_requests=10, comparison={"enabled": False}).judge_interval(
        samples, OK_STATUS, T0, T0 + MINUTE
    )
    assert check(verdict, "error_rate").verdict == "pass"


def test_p95_latency_above_threshold_fails() -> None:
    samples = [
        *traffic(T0, T0 + MINUTE, "canary", latency=lambda i: 700.0 if i % 4 == 0 else 50.0),
        *probes(T0, T0 + MINUTE),
    ]
    verdict = judge(comparison={"enabled": False}).judge_interval(
        samples, OK_STATUS, T0, T0 + MINUTE
    )
    result = check(verdict, "p95_latency")
    assert result.verdict == "fail"
    assert result.value == pytest.approx(700.0)
    assert result.message.startswith(
        "canary p95 latency 700 ms (25.0% of responses slower than 500 ms) > 500 ms: the lower "
    )
    assert "(n=120, 30 slower than 500 ms;" in result.message
    assert only_failures(verdict) == {"p95_latency"}


def test_p95_only_counts_responses_with_a_latency() -> None:
    # Connection errors carry no latency: 120 requests but only 10 responses.
    samples = [
        *traffic(T0, T0 + MINUTE, "canary", latency=lambda i: 20.0 if i < 10 else None),
        *probes(T0, T0 + MINUTE),
    ]
    verdict = judge(max_error_rate=1.0, comparison={"enabled": False}).judge_interval(
        samples, OK_STATUS, T0, T0 + MINUTE
    )
    assert check(verdict, "p95_latency").verdict == "insufficient"
    assert check(verdict, "p95_latency").samples == 10


class TestRestarts:
    def test_a_restarted_canary_replica_fails(self) -> None:
        statuses = [
            status(T0 + 10, name="canary-0", restarts=0),
            status(T0 + 40, name="canary-0", restarts=2),
            status(T0 + 40, name="stable-0", version="stable", restarts=7),  # not judged
        ]
        verdict = judge().judge_interval(
            healthy_interval(T0, T0 + MINUTE), statuses, T0, T0 + MINUTE
        )
        result = check(verdict, "restarts")
        assert result.verdict == "fail"
        assert (result.value, result.threshold, result.samples) == (2.0, 0.0, 2)
        assert "canary replicas restarted 2 times (canary-0 x2) > 0" in result.message
        assert only_failures(verdict) == {"restarts"}

    def test_no_canary_status_is_insufficient(self) -> None:
        stable_only = [status(T0 + 10, name="stable-0", version="stable")]
        verdict = judge().judge_interval(
            healthy_interval(T0, T0 + MINUTE), stable_only, T0, T0 + MINUTE
        )
        assert check(verdict, "restarts").verdict == "insufficient"
        assert "max_restarts = false" in check(verdict, "restarts").message
        assert verdict.verdict == "insufficient"

    def test_false_disables_the_check(self) -> None:
        verdict = judge(max_restarts=False).judge_interval(
            healthy_interval(T0, T0 + MINUTE), [], T0, T0 + MINUTE
        )
        assert verdict.check("restarts") is None
        assert verdict.verdict == "pass"


class TestConsecutiveHealthFailures:
    @staticmethod
    def run(probe_samples: list[Sample], history: list[Sample] | None = None) -> CheckResult:
        samples = [
            *traffic(T0, T0 + MINUTE, "canary"),
            *traffic(T0, T0 + MINUTE, "stable", per_second=6.0),
            *probe_samples,
        ]
        verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE, history or [])
        return check(verdict, "health_consecutive_failures")

    def test_four_failures_in_a_row_fail(self) -> None:
        result = self.run([health(T0 + i * 5, ok=not 2 <= i <= 5) for i in range(12)])
        assert result.verdict == "fail"
        assert (result.value, result.threshold) == (4.0, 3.0)
        assert result.message.startswith(
            "canary /health failed 4 times in a row on canary-0 from 12:00:10 to 12:00:25 UTC"
        )

    def test_three_failures_in_a_row_pass(self) -> None:
        result = self.run([health(T0 + i * 5, ok=not 2 <= i <= 4) for i in range(12)])
        assert (result.verdict, result.value) == ("pass", 3.0)

    def test_runs_are_counted_per_replica(self) -> None:
        # Replica a fails 4 probes in a row; interleaved with healthy probes of replica b,
        # which would hide the run if probes were not grouped by replica.
        probe_samples = []
        for i in range(12):
            probe_samples.append(health(T0 + i * 5, ok=not 2 <= i <= 5, replica="a"))
            probe_samples.append(health(T0 + i * 5 + 1, replica="b"))
        result = self.run(probe_samples)
        assert result.verdict == "fail"
        assert "on a from" in result.message

    def test_a_run_that_began_in_the_previous_interval_counts_in_full(self) -> None:
        history = [health(T0 - 10, ok=False), health(T0 - 5, ok=False)]
        current = [health(T0 + i * 5, ok=i >= 2) for i in range(12)]
        result = self.run(current, history)
        assert (result.verdict, result.value) == ("fail", 4.0)
        assert result.window_start == T0 - 10

    def test_an_old_run_that_ended_before_the_window_is_not_reported_again(self) -> None:
        history = [health(T0 - 30 + i * 5, ok=False) for i in range(5)] + [health(T0 - 4)]
        result = self.run(probes(T0, T0 + MINUTE), history)
        assert (result.verdict, result.value) == ("pass", 0.0)

    def test_no_probe_in_the_hold_is_insufficient(self) -> None:
        result = self.run([])
        assert result.verdict == "insufficient"
        assert "no /health probe of the canary over 12:00:00-12:01:00 UTC" in result.message

    def test_an_interval_a_loaded_sampler_missed_is_judged_on_the_hold(self) -> None:
        result = self.run([], [health(T0 - 30 + i * 5) for i in range(5)])
        assert (result.verdict, result.value) == ("pass", 0.0)


class TestNoSuccessWindow:
    @staticmethod
    def judged(
        fail: Callable[[int], bool], history: Sequence[Sample] = ()
    ) -> tuple[CanaryVerdict, CheckResult]:
        """A minute of canary traffic (request ``i`` failing when ``fail(i)``) and probes,
        judged with any error rate allowed and no comparison; the verdict and its
        no_success check."""
        samples = [*traffic(T0, T0 + MINUTE, "canary", fail=fail), *probes(T0, T0 + MINUTE)]
        verdict = judge(max_error_rate=1.0, comparison={"enabled": False}).judge_interval(
            samples, OK_STATUS, T0, T0 + MINUTE, history=history
        )
        return verdict, check(verdict, "no_success")

    def test_no_successful_request_for_30_s_fails(self) -> None:
        verdict, result = self.judged(lambda i: i >= 20)  # fine until 10 s
        assert result.verdict == "fail"
        assert result.value == pytest.approx(50.5)  # last success at 9.5 s, window ends at 60
        assert result.message.startswith(
            "no successful canary request for 50 s (>= 30 s) over 12:00:09-12:01:00 UTC"
        )
        assert verdict.verdict == "fail"

    def test_a_canary_that_gets_no_traffic_at_all_fails(self) -> None:
        samples = [*traffic(T0, T0 + MINUTE, "stable", per_second=6.0), *probes(T0, T0 + MINUTE)]
        verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
        assert check(verdict, "no_success").verdict == "fail"
        assert check(verdict, "error_rate").verdict == "insufficient"
        assert verdict.verdict == "fail"  # a failure outranks missing evidence

    def test_a_gap_shorter_than_the_window_passes(self) -> None:
        _, result = self.judged(lambda i: 20 <= i < 70)  # 25 s gap
        assert result.verdict == "pass"
        assert result.value == pytest.approx(25.5)

    def test_the_gap_spans_intervals(self) -> None:
        history = traffic(T0 - MINUTE, T0, "canary", fail=lambda i: i >= 100)  # last ok: -10.5 s
        _, result = self.judged(lambda i: i < 40, history)
        assert result.verdict == "fail"
        assert result.value == pytest.approx(30.5)
        assert result.window_start == pytest.approx(T0 - 10.5)


class TestSustainedRules:
    def test_error_rate_above_5_percent_for_2_minutes_fails(self) -> None:
        bad = lambda i: i % 10 == 0  # noqa: E731 - 10 % errors
        history = traffic(T0 - 2 * MINUTE, T0, "canary", fail=bad)
        current = [*traffic(T0, T0 + 30, "canary", fail=bad), *probes(T0, T0 + 30)]
        verdict = judge(max_error_rate=0.5, comparison={"enabled": False}).judge_interval(
            current, OK_STATUS, T0, T0 + 30, history=history
        )
        result = check(verdict, "sustained_error_rate")
        assert result.verdict == "fail"
        assert result.value is not None
        assert result.value >= 120.0
        assert result.message.startswith("canary error rate above 5.0% for 150 s (>= 120 s)")
        assert only_failures(verdict) == {"sustained_error_rate"}

    def test_a_one_minute_burst_does_not_count_as_sustained(self) -> None:
        history = [
            *traffic(T0 - 2 * MINUTE, T0 - MINUTE, "canary", fail=lambda i: i % 10 == 0),
            *traffic(T0 - MINUTE, T0, "canary"),
        ]
        current = [*traffic(T0, T0 + 30, "canary"), *probes(T0, T0 + 30)]
        verdict = judge(comparison={"enabled": False}).judge_interval(
            current, OK_STATUS, T0, T0 + 30, history=history
        )
        result = check(verdict, "sustained_error_rate")
        assert result.verdict == "pass"
        # The burst ended before this interval: nothing to report for it.
        assert result.value == 0.0

    def test_sustained_window_is_configurable(self) -> None:
        current = [
            *traffic(T0, T0 + 20, "canary", per_second=4, fail=lambda i: i % 3 == 0),
            *probes(T0, T0 + 20),
        ]
        verdict = judge(
            max_error_rate=0.5, sustained_error_window="10s", comparison={"enabled": False}
        ).judge_interval(current, OK_STATUS, T0, T0 + 20)
        assert check(verdict, "sustained_error_rate").verdict == "fail"
        assert check(verdict, "sustained_error_rate").threshold == 10.0

    def test_responses_slower_than_5_s_for_a_minute_fail(self) -> None:
        history = traffic(T0 - 50, T0, "canary", latency=lambda i: 6000.0)
        current = [*traffic(T0, T0 + 20, "canary", latency=lambda i: 6000.0), *probes(T0, T0 + 20)]
        verdict = judge(max_p95_latency_ms=10_000, comparison={"enabled": False}).judge_interval(
            current, OK_STATUS, T0, T0 + 20, history=history
        )
        result = check(verdict, "slow_responses")
        assert result.verdict == "fail"
        assert result.message.startswith(
            "canary median response time above 5000 ms for 70 s (>= 60 s)"
        )
        assert "median 6000 ms" in result.message
        assert only_failures(verdict) == {"slow_responses"}

    def test_slow_for_half_a_minute_passes(self) -> None:
        history = traffic(T0 - 10, T0, "canary", latency=lambda i: 6000.0)
        current = [
            *traffic(T0, T0 + 20, "canary", latency=lambda i: 6000.0),
            *traffic(T0 + 20, T0 + 40, "canary"),
            *probes(T0, T0 + 40),
        ]
        verdict = judge(max_p95_latency_ms=10_000, comparison={"enabled": False}).judge_interval(
            current, OK_STATUS, T0, T0 + 40, history=history
        )
        result = check(verdict, "slow_responses")
        assert result.verdict == "pass"
        assert result.value is not None
        assert 30.0 <= result.value < 60.0


# -- comparison ----------------------------------------------------------------------------


def comparison_samples(
    rng: random.Random,
    start: float,
    end: float,
    *,
    canary_error: float = 0.02,
    stable_error: float = 0.02,
    canary_slowdown: float = 1.0,
    per_second: float = 2.0,
) -> list[Sample]:
    """Canary and stable traffic drawn from (possibly different) distributions."""
    samples: list[Sample] = []
    count = round((end - start) * per_second)
    for i in range(count):
        t = start + i / per_second
        samples.append(
            http(
                t,
                "canary",
                ok=rng.random() >= canary_error,
                latency_ms=rng.lognormvariate(3.0, 0.5) * canary_slowdown,
            )
        )
        samples.append(
            http(
                t,
                "stable",
                ok=rng.random() >= stable_error,
                latency_ms=rng.lognormvariate(3.0, 0.5),
            )
        )
    return samples


LOOSE = {  # thresholds out of the way: these tests are about the comparison
    "max_error_rate": 1.0,
    "max_p95_latency_ms": 1e9,
    "max_restarts": False,
    "max_consecutive_health_failures": False,
    "sustained_error_rate": 1.0,
    "slow_response_ms": 1e9,
}


class TestComparison:
    def test_aa_samples_do_not_fail(self) -> None:
        rng = random.Random(7)
        samples = comparison_samples(rng, T0, T0 + 5 * MINUTE)
        verdict = judge(**LOOSE).judge_interval(samples, [], T0, T0 + 5 * MINUTE)
        assert check(verdict, "compare_error_rate").verdict == "pass"
        assert check(verdict, "compare_latency").verdict == "pass"

    def test_clearly_higher_canary_error_rate_fails(self) -> None:
        rng = random.Random(8)
        samples = comparison_samples(rng, T0, T0 + 5 * MINUTE, canary_error=0.10, stable_error=0.01)
        verdict = judge(**LOOSE).judge_interval(samples, [], T0, T0 + 5 * MINUTE)
        result = check(verdict, "compare_error_rate")
        assert result.verdict == "fail"
        assert result.value is not None
        assert result.threshold is not None
        # The first of 15 planned looks spends ln(1 + (e - 1) / 15) of the sequential 40 %
        # of the test's share (Lan-DeMets, Pocock type).
        first_look = 0.005 / 2 * 0.4 * math.log(1 + (math.e - 1) / 15)
        assert result.value < result.threshold == pytest.approx(first_look)
        assert "significantly higher than stable" in result.message
        assert "Fisher exact one-sided" in result.message
        assert "(since the hold began; n=600 canary, 600 stable)" in result.message
        assert only_failures(verdict) == {"compare_error_rate"}

    def test_clearly_slower_canary_fails(self) -> None:
        rng = random.Random(9)
        samples = comparison_samples(rng, T0, T0 + 5 * MINUTE, canary_slowdown=2.0)
        verdict = judge(**LOOSE).judge_interval(samples, [], T0, T0 + 5 * MINUTE)
        result = check(verdict, "compare_latency")
        assert result.verdict == "fail"
        assert "significantly slower than stable +20% +1.0 ms" in result.message
        assert only_failures(verdict) == {"compare_latency"}

    def test_a_slowdown_within_the_tolerance_passes(self) -> None:
        rng = random.Random(10)
        samples = comparison_samples(rng, T0, T0 + 5 * MINUTE, canary_slowdown=1.15)
        verdict = judge(**LOOSE).judge_interval(samples, [], T0, T0 + 5 * MINUTE)
        assert check(verdict, "compare_latency").verdict == "pass"
        strict = judge(**LOOSE, comparison={"latency_tolerance": 0, "latency_tolerance_ms": 0})
        assert (
            check(
                strict.judge_interval(samples, [], T0, T0 + 5 * MINUTE), "compare_latency"
            ).verdict
            == "fail"
        )

    def test_a_fast_service_that_slows_by_more_than_the_tolerance_fails_at_once(self) -> None:
        """An 8 ms service whose canary adds 4 ms (+50 %) in one minute at 2 req/s: the
        default tolerance (20 % + 1 ms) sees it; the old 5 ms absolute margin (+60 % at
        8 ms) hid it."""
        rng = random.Random(12)
        samples = []
        for i in range(120):
            t = T0 + i / 2.0
            samples.append(http(t, "stable", latency_ms=8.0 * rng.lognormvariate(0.0, 0.3)))
            samples.append(http(t, "canary", latency_ms=8.0 * rng.lognormvariate(0.0, 0.3) + 4))
        verdict = judge(**LOOSE).judge_interval(samples, [], T0, T0 + MINUTE)
        result = check(verdict, "compare_latency")
        assert result.verdict == "fail", result.message
        assert "+20% +1.0 ms" in result.message
        old = judge(**LOOSE, comparison={"latency_tolerance_ms": 5.0})
        assert check(
            old.judge_interval(samples, [], T0, T0 + MINUTE), "compare_latency"
        ).verdict == ("pass")

    def test_error_rate_margin_ignores_small_differences(self) -> None:
        samples = [
            *traffic(T0, T0 + 500, "canary", per_second=20, fail=lambda i: i % 50 == 0),  # 2 %
            *traffic(T0, T0 + 500, "stable", per_second=20, fail=lambda i: i % 100 == 0),  # 1 %
        ]
        strict = judge(**LOOSE).judge_interval(samples, [], T0, T0 + 500)
        assert check(strict, "compare_error_rate").verdict == "fail"
        lenient = judge(**LOOSE, comparison={"error_rate_margin": 0.02}).judge_interval(
            samples, [], T0, T0 + 500
        )
        assert check(lenient, "compare_error_rate").verdict == "pass"

    def test_small_samples_are_insufficient(self) -> None:
        rng = random.Random(11)
        samples = comparison_samples(rng, T0, T0 + 10, canary_error=0.5, canary_slowdown=5.0)
        verdict = judge(**LOOSE, min_requests=5).judge_interval(samples, [], T0, T0 + 10)
        for name in ("compare_error_rate", "compare_latency"):
            result = check(verdict, name)
            assert result.verdict == "insufficient"
            assert "20 canary and 20 stable" in result.message
            assert "need 30 each (judge.comparison.min_samples)" in result.message
        assert verdict.verdict == "insufficient"

    def test_comparison_accumulates_samples_over_the_hold(self) -> None:
        rng = random.Random(12)
        history = comparison_samples(rng, T0 - 10, T0)
        current = comparison_samples(rng, T0, T0 + 10)
        verdict = judge(**LOOSE, min_requests=5).judge_interval(
            current, [], T0, T0 + 10, history=history
        )
        result = check(verdict, "compare_latency")
        assert result.verdict == "pass"
        assert result.samples == 80  # 40 canary + 40 stable since the hold began
        assert result.window_start == T0 - 10

    def test_looks_beyond_the_plan_have_no_alpha_left(self) -> None:
        rng = random.Random(13)
        samples = comparison_samples(rng, T0, T0 + MINUTE)
        the_judge = Judge(JudgeConfig.model_validate(LOOSE), planned_looks=2)
        assert the_judge.comparison_plan.alpha == pytest.approx(0.005 / 2)
        the_judge.judge_interval(samples, [], T0, T0 + MINUTE)
        the_judge.judge_interval(samples, [], T0, T0 + MINUTE)
        third = the_judge.judge_interval(samples, [], T0, T0 + MINUTE)
        result = check(third, "compare_latency")
        assert result.verdict == "insufficient"
        assert "look 3 is beyond the 2 planned looks" in result.message

    def test_planned_looks_from_hold_and_interval(self) -> None:
        assert planned_looks(900, 60) == 15
        assert planned_looks(1800, 60) == 30
        assert planned_looks(10, 3) == 4
        assert planned_looks(0, 60) == 1
        with pytest.raises(ValueError, match="interval must be longer than 0 s, got 0"):
            planned_looks(10, 0)


def run_aa_stage(the_judge: Judge, rng: random.Random, looks: int, **kwargs: float) -> bool:
    """One simulated hold; True when the comparison failed at any look."""
    history: list[Sample] = []
    for look in range(looks):
        start = T0 + look * 30.0
        current = comparison_samples(rng, start, start + 30.0, **kwargs)
        verdict = the_judge.judge_interval(current, [], start, start + 30.0, history=history)
        history.extend(current)
        if any(c.verdict == "fail" for c in verdict.checks):
            return True
    return False


def test_false_alarm_rate_of_the_comparison_stays_below_alpha() -> None:
    """Seeded A/A holds (same error rate and latency distribution, zero tolerance: the
    hardest null case): the share of holds the comparison fails at any of its 5 looks must
    stay at or below alpha = 5 %. The same simulation without the Bonferroni split over
    looks and tests exceeds alpha, and a real regression is caught: the check has teeth."""
    looks, runs, alpha = 5, 300, 0.05
    comparison = {"alpha": alpha, "latency_tolerance": 0, "latency_tolerance_ms": 0}
    zero_tolerance = {**LOOSE, "min_requests": 1, "comparison": comparison}
    config = JudgeConfig.model_validate(zero_tolerance)
    rng = random.Random(20260101)
    false_alarms = sum(
        run_aa_stage(Judge(config, planned_looks=looks), rng, looks) for _ in range(runs)
    )
    assert false_alarms / runs <= alpha, f"{false_alarms} false alarms in {runs} A/A holds"

    # Naive: a budget of 0.9 (0.45 per test, spent over the 5 looks and two windows).
    naive_config = JudgeConfig.model_validate(
        {**zero_tolerance, "comparison": {**comparison, "alpha": 0.9}}
    )
    naive = Judge(naive_config, planned_looks=looks)
    assert naive.comparison_plan.alpha == pytest.approx(0.45)
    rng = random.Random(20260101)
    naive_runs = 150
    naive_alarms = sum(
        run_aa_stage(Judge(naive_config, planned_looks=looks), rng, looks)
        for _ in range(naive_runs)
    )
    assert naive_alarms / naive_runs > 2 * alpha

    rng = random.Random(7)
    detected = sum(
        run_aa_stage(Judge(config, planned_looks=looks), rng, looks, canary_slowdown=1.3)
        for _ in range(30)
    )
    assert detected >= 27


# -- stage ----------------------------------------------------------------------------------


def interval(start: float, verdict: str, name: str = "error_rate") -> CanaryVerdict:
    assert verdict in ("pass", "fail", "insufficient")
    result = CheckResult(
        name=name,
        verdict=verdict,  # type: ignore[arg-type]
        value=2.0 if verdict == "fail" else 0.5,
        threshold=1.0,
        unit="%",
        window_start=start,
        window_end=start + MINUTE,
        samples=100,
        message=f"{name} {verdict} at {start}",
    )
    return CanaryVerdict(
        verdict=result.verdict, checks=(result,), window_start=start, window_end=start + MINUTE
    )


class TestStageVerdict:
    def test_all_intervals_passed(self) -> None:
        stage = judge().judge_stage([interval(T0, "pass"), interval(T0 + MINUTE, "pass")])
        assert stage.verdict == "pass"
        assert (stage.window_start, stage.window_end) == (T0, T0 + 2 * MINUTE)
        summary = check(stage, "intervals")
        assert (summary.value, summary.samples) == (2.0, 2)
        assert summary.message.startswith("2 of 2 intervals passed, 0 failed, 0 insufficient")

    def test_any_failing_interval_fails_the_stage_with_its_message(self) -> None:
        stage = judge().judge_stage(
            [interval(T0, "pass"), interval(T0 + MINUTE, "fail"), interval(T0 + 120, "pass")]
        )
        assert stage.verdict == "fail"
        assert check(stage, "error_rate").message == f"error_rate fail at {T0 + MINUTE}"
        assert stage.failure_message().splitlines() == [
            "2 of 3 intervals passed, 1 failed, 0 insufficient "
            "(judge.max_insufficient_intervals=0) over 12:00:00-12:03:00 UTC",
            f"error_rate fail at {T0 + MINUTE}",
        ]

    def test_insufficient_interval_makes_the_stage_insufficient_by_default(self) -> None:
        intervals = [interval(T0, "insufficient"), interval(T0 + MINUTE, "pass")]
        assert judge().judge_stage(intervals).verdict == "insufficient"
        assert judge(max_insufficient_intervals=1).judge_stage(intervals).verdict == "pass"

    def test_insufficient_is_never_pass(self) -> None:
        only_insufficient = [interval(T0, "insufficient"), interval(T0 + MINUTE, "insufficient")]
        stage = judge(max_insufficient_intervals=5).judge_stage(only_insufficient)
        assert stage.verdict == "insufficient"
        assert judge().judge_stage([]).verdict == "insufficient"
        assert "no interval was judged" in judge().judge_stage([]).failure_message()

    def test_fail_outranks_insufficient(self) -> None:
        stage = judge().judge_stage([interval(T0, "insufficient"), interval(T0 + 60, "fail")])
        assert stage.verdict == "fail"


# -- reports ---------------------------------------------------------------------------------


def test_properties_carry_value_threshold_window_and_samples_per_check() -> None:
    samples = [
        *traffic(T0, T0 + MINUTE, "canary", fail=lambda i: i % 10 == 0),
        *traffic(T0, T0 + MINUTE, "stable", per_second=6.0),
        *probes(T0, T0 + MINUTE),
    ]
    verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    props = verdict.properties()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in props)
    as_dict = dict(props)
    assert len(as_dict) == len(props), "property names must be unique"
    assert as_dict["judge.verdict"] == "fail"
    assert as_dict["judge.window"] == "12:00:00-12:01:00 UTC"
    assert as_dict["judge.window_start"] == "2026-01-01T12:00:00.000Z"
    assert as_dict["judge.error_rate.verdict"] == "fail"
    assert as_dict["judge.error_rate.value"] == "10"
    assert as_dict["judge.health_failure_share.canary-0.probes"] == "12"
    assert as_dict["judge.health_failure_share.canary-0.failed"] == "0"
    assert as_dict["judge.error_rate.threshold"] == "1"
    assert as_dict["judge.error_rate.unit"] == "%"
    assert as_dict["judge.error_rate.window"] == "12:00:00-12:01:00 UTC"
    assert as_dict["judge.error_rate.samples"] == "120"
    assert as_dict["judge.p95_latency.threshold"] == "500"
    assert as_dict["judge.compare_latency.unit"] == "p"
    assert as_dict["judge.compare_latency.samples"] == "480"
    for c in verdict.checks:
        assert f"judge.{c.name}.verdict" in as_dict


def test_verdict_survives_json() -> None:
    verdict = judge().judge_interval(healthy_interval(T0, T0 + MINUTE), OK_STATUS, T0, T0 + 60)
    again = CanaryVerdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict
    with pytest.raises(ValueError, match="unknown verdict 'maybe'"):
        CanaryVerdict.from_dict({**verdict.to_dict(), "verdict": "maybe"})


# -- configuration --------------------------------------------------------------------------


class TestConfig:
    def test_seed_defaults(self) -> None:
        config = JudgeConfig()
        assert (config.max_error_rate, config.max_p95_latency_ms, config.max_restarts) == (
            0.01,
            500.0,
            0,
        )
        assert config.max_consecutive_health_failures == 3
        assert (config.no_success_window, config.sustained_error_window) == (30.0, 120.0)
        assert (config.sustained_error_rate, config.slow_response_ms) == (0.05, 5000.0)
        assert config.slow_response_window == 60.0
        assert config.comparison == ComparisonConfig()

    def test_durations_accept_units(self) -> None:
        config = JudgeConfig.model_validate(
            {"no_success_window": "45s", "sustained_error_window": "3m"}
        )
        assert (config.no_success_window, config.sustained_error_window) == (45.0, 180.0)

    @pytest.mark.parametrize(
        ("table", "fragment"),
        [
            ({"max_error_rate": 5}, "max_error_rate\n  Input should be less than or equal to 1"),
            ({"max_eror_rate": 0.1}, "max_eror_rate\n  Extra inputs are not permitted"),
            ({"no_success_window": "soon"}, "expected a duration such as 30"),
            ({"no_success_window": 0}, "a window must be longer than 0 s, got 0"),
            ({"max_restarts": True}, "or false to disable the check, got true"),
            ({"comparison": {"alpha": 0}}, "comparison.alpha\n  Input should be greater than 0"),
        ],
    )
    def test_bad_values_name_the_key_and_value(
        self, table: dict[str, object], fragment: str
    ) -> None:
        with pytest.raises(ValidationError) as excinfo:
            JudgeConfig.model_validate(table)
        assert fragment in str(excinfo.value)

    def test_judge_rejects_bad_planned_looks(self) -> None:
        with pytest.raises(ValueError, match="planned_looks must be at least 1, got 0"):
            Judge(JudgeConfig(), planned_looks=0)

    def test_window_must_not_end_before_it_starts(self) -> None:
        with pytest.raises(ValueError, match="window ends before it starts"):
            judge().judge_interval([], [], T0 + 10, T0)


# -- evidence-based thresholds, stable as control, health share, stopping early --------------


def noisy(
    rng: random.Random,
    start: float,
    end: float,
    target: str,
    *,
    per_second: float,
    error: float,
    latency_ms: float = 20.0,
) -> list[Sample]:
    """Random error draws (not every n-th request) at a steady request rate."""
    assert target in ("stable", "canary")
    return traffic(
        start,
        end,
        "canary" if target == "canary" else "stable",
        per_second=per_second,
        fail=lambda i: rng.random() < error,
        latency=lambda i: latency_ms * (0.8 + 0.4 * rng.random()),
    )


def test_one_error_in_50_over_a_noisy_stable_is_not_a_failure() -> None:
    # The example: 1 error in 50 requests (2.0 % > 1.0 % as a point estimate) used
    # to roll back an identical canary; the lower confidence bound is far below 1 %.
    samples = [
        *traffic(T0, T0 + 50, "canary", per_second=1.0, fail=lambda i: i == 7),
        *traffic(T0, T0 + 50, "stable", per_second=4.0, fail=lambda i: i == 99),
        *probes(T0, T0 + 50),
    ]
    result = check(judge().judge_interval(samples, OK_STATUS, T0, T0 + 50), "error_rate")
    assert result.verdict == "pass"
    assert result.value == pytest.approx(2.0)
    assert result.message.startswith("canary error rate 2.0% consistent with <= 1.0% (lower ")
    assert "(n=50, 1 errors; stable n=200, 1 errors)" in result.message


def test_credibly_over_needs_evidence_not_a_point_estimate() -> None:
    # 3 of 120 (2.5 %) is over 1 % as a point estimate but not credibly: pass. 15 of 120
    # (12.5 %) is credibly over: fail, with the lower bound in the message.
    for errors, expected in ((3, "pass"), (15, "fail")):
        samples = [
            *traffic(T0, T0 + MINUTE, "canary", fail=lambda i, e=errors: i < e),
            *traffic(T0, T0 + MINUTE, "stable", per_second=6.0),
            *probes(T0, T0 + MINUTE),
        ]
        result = check(judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE), "error_rate")
        assert result.verdict == expected, result.message


def test_cumulative_window_finds_a_small_excess_that_no_single_interval_shows() -> None:
    # 3 % errors, judged look by look: one interval of 120 requests is not enough, the
    # hold so far is.
    the_judge = Judge(JudgeConfig(comparison=ComparisonConfig(enabled=False)), planned_looks=10)
    history: list[Sample] = []
    verdicts = []
    for look in range(10):
        start = T0 + look * MINUTE
        current = [
            *traffic(start, start + MINUTE, "canary", per_second=4, fail=lambda i: i % 33 == 5),
            *traffic(start, start + MINUTE, "stable", per_second=4),
            *probes(start, start + MINUTE),
        ]
        history += current
        verdicts.append(
            the_judge.judge_interval(current, [status(start)], start, start + MINUTE, history)
        )
    first = next(i for i, v in enumerate(verdicts) if v.verdict == "fail")
    assert first >= 1, "one interval alone is not credible evidence"
    result = check(verdicts[first], "error_rate")
    assert result.verdict == "fail"
    assert "(since the hold began)" in result.message


def test_interval_window_finds_a_fault_that_starts_late() -> None:
    the_judge = Judge(JudgeConfig(comparison=ComparisonConfig(enabled=False)), planned_looks=10)
    history: list[Sample] = []
    verdict = None
    for look in range(10):
        start = T0 + look * MINUTE
        late = look == 9
        current = [
            *traffic(start, start + MINUTE, "canary", per_second=4, fail=lambda i, x=late: x),
            *traffic(start, start + MINUTE, "stable", per_second=4),
            *probes(start, start + MINUTE),
        ]
        history += current
        verdict = the_judge.judge_interval(current, [], start, start + MINUTE, history)
    assert verdict is not None
    result = check(verdict, "error_rate")
    assert result.verdict == "fail"
    assert "(in the interval)" in result.message


def both_over(stable_exceeds: str) -> CanaryVerdict:
    rng = random.Random(3)
    samples = [
        *noisy(rng, T0, T0 + MINUTE, "canary", per_second=4.0, error=0.2),
        *noisy(rng, T0, T0 + MINUTE, "stable", per_second=4.0, error=0.2),
        *probes(T0, T0 + MINUTE),
    ]
    return judge(stable_exceeds=stable_exceeds).judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)


def test_stable_over_the_threshold_too_is_the_environment_not_the_canary() -> None:
    verdict = both_over("insufficient")
    result = check(verdict, "error_rate")
    assert result.verdict == "insufficient"
    assert result.stable_exceeds
    assert "but stable also exceeds 1.0%" in result.message
    assert "the environment, not the canary (judge.stable_exceeds = insufficient)" in (
        result.message
    )
    assert check(verdict, "compare_error_rate").verdict == "pass"
    assert verdict.verdict == "insufficient"
    assert ("judge.error_rate.stable_exceeds", "true") in verdict.properties()


def test_stable_exceeds_fail_lets_the_absolute_threshold_win() -> None:
    result = check(both_over("fail"), "error_rate")
    assert result.verdict == "fail"
    assert "stable also exceeds" in result.message


def test_stable_exceeds_hold_does_not_count_against_insufficient_intervals() -> None:
    held = both_over("hold")
    assert held.verdict == "insufficient"
    passing = judge().judge_interval(
        healthy_interval(T0 + MINUTE, T0 + 2 * MINUTE), OK_STATUS, T0 + MINUTE, T0 + 2 * MINUTE
    )
    hold_judge = judge(stable_exceeds="hold")
    stage = hold_judge.judge_stage([held, passing])
    assert stage.verdict == "pass"
    assert "1 held (stable also exceeded a threshold: the environment)" in stage.checks[0].message
    assert hold_judge.stage_can_still_pass([held], remaining_looks=1) is None
    # The default counts it: the stage cannot pass with max_insufficient_intervals = 0.
    default = judge()
    assert default.judge_stage([both_over("insufficient"), passing]).verdict == "insufficient"
    assert "more than judge.max_insufficient_intervals = 0" in (
        default.stage_can_still_pass([both_over("insufficient")], remaining_looks=5) or ""
    )


def test_stable_exceeds_is_never_pass() -> None:
    with pytest.raises(ValidationError, match="stable_exceeds"):
        JudgeConfig.model_validate({"stable_exceeds": "pass"})


def test_host_load_that_slows_both_versions_does_not_fail_the_canary() -> None:
    # The case: canary p95 800 ms, stable 757 ms, same sampler, same window.
    rng = random.Random(5)
    samples = [
        *noisy(rng, T0, T0 + MINUTE, "canary", per_second=4.0, error=0.0, latency_ms=700.0),
        *noisy(rng, T0, T0 + MINUTE, "stable", per_second=6.0, error=0.0, latency_ms=680.0),
        *probes(T0, T0 + MINUTE),
    ]
    verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    p95 = check(verdict, "p95_latency")
    assert p95.verdict == "insufficient"
    assert p95.stable_exceeds
    assert "stable also exceeds the p95 limit (stable p95" in p95.message
    assert check(verdict, "compare_latency").verdict == "pass"
    assert "fail" not in {c.verdict for c in verdict.checks}


def test_slow_canary_with_a_fast_stable_fails_p95_with_evidence() -> None:
    rng = random.Random(6)
    samples = [
        *noisy(rng, T0, T0 + MINUTE, "canary", per_second=4.0, error=0.0, latency_ms=700.0),
        *noisy(rng, T0, T0 + MINUTE, "stable", per_second=6.0, error=0.0, latency_ms=20.0),
        *probes(T0, T0 + MINUTE),
    ]
    verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    assert check(verdict, "p95_latency").verdict == "fail"
    assert not check(verdict, "p95_latency").stable_exceeds
    assert check(verdict, "compare_latency").verdict == "fail"


def flapping(share_failed: float, replica: str = "canary-0") -> list[Sample]:
    # Every k-th probe fails: never more than one failure in a row.
    every = round(1 / share_failed)
    return [health(T0 + i, ok=i % every != 0, replica=replica) for i in range(int(MINUTE))]


def test_flapping_health_fails_the_share_check_without_a_long_run() -> None:
    samples = [
        *traffic(T0, T0 + MINUTE, "canary"),
        *traffic(T0, T0 + MINUTE, "stable", per_second=6.0),
        *flapping(0.25),
        *[health(T0 + i + 0.5, replica="canary-1") for i in range(int(MINUTE))],
    ]
    verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    share = check(verdict, "health_failure_share")
    assert share.verdict == "fail"
    assert check(verdict, "health_consecutive_failures").verdict == "pass"
    assert "canary-0 15 of 60 failed (25.0%)" in share.message
    assert "canary-1 0 of 60 failed (0.0%)" in share.message
    details = dict(share.details)
    assert details["canary-0.failed"] == "15"
    assert details["canary-0.probes"] == "60"
    assert details["canary-0.failed_share"] == "0.25"
    assert details["canary-1.failed"] == "0"
    props = dict(verdict.properties())
    assert props["judge.health_failure_share.canary-0.failed"] == "15"
    restored = CanaryVerdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert restored == verdict


def test_a_rare_failed_probe_passes_the_share_check() -> None:
    samples = [*traffic(T0, T0 + MINUTE, "canary"), *flapping(1 / 30)]
    share = check(
        judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE), "health_failure_share"
    )
    assert share.verdict == "pass"
    assert "consistent with <= 5.0%" in share.message


def test_health_share_without_probes_is_insufficient_and_can_be_switched_off() -> None:
    samples = traffic(T0, T0 + MINUTE, "canary")
    verdict = judge().judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    assert check(verdict, "health_failure_share").verdict == "insufficient"
    off = judge(max_health_failure_share=False).judge_interval(samples, OK_STATUS, T0, T0 + MINUTE)
    assert off.check("health_failure_share") is None
    with pytest.raises(ValidationError, match="fraction"):
        JudgeConfig.model_validate({"max_health_failure_share": True})


def test_threshold_checks_beyond_the_planned_looks_stay_valid() -> None:
    """The test of the hold so far is always valid: a look beyond the plan is still
    judged (only the late-fault window has no budget left there)."""
    the_judge = Judge(JudgeConfig(), planned_looks=1)
    the_judge.judge_interval(healthy_interval(T0, T0 + MINUTE), OK_STATUS, T0, T0 + MINUTE)
    late = [*traffic(T0 + MINUTE, T0 + 2 * MINUTE, "canary", fail=lambda i: True)]
    history = [*healthy_interval(T0, T0 + MINUTE), *late]
    second = the_judge.judge_interval(
        late, OK_STATUS, T0 + MINUTE, T0 + 2 * MINUTE, history, look=2
    )
    result = check(second, "error_rate")
    assert result.verdict == "fail"
    assert "(since the hold began)" in result.message


def test_alpha_is_spent_over_checks_windows_and_looks() -> None:
    the_judge = Judge(JudgeConfig(alpha=0.03), planned_looks=5)
    plan = the_judge.threshold_plan
    assert plan.alpha == pytest.approx(0.03 / 3)  # Bonferroni over the 3 threshold checks
    assert plan.cumulative_alpha == pytest.approx(0.03 / 3 * 0.4)  # the always-valid part
    # The fixed-sample test of the hold so far: at the last planned look only.
    assert [plan.final_alpha(look) for look in (1, 4, 6)] == [None, None, None]
    assert plan.final_alpha(5) == pytest.approx(0.03 / 3 * 0.4)
    assert plan.late_alpha(1) is None  # no late window at the first look
    assert plan.late_alpha(2) == pytest.approx(0.03 / 3 * 0.2 / 4)  # looks 2..5 share the rest
    assert plan.late_alpha(6) is None  # beyond the plan
    one_look = Judge(JudgeConfig(alpha=0.03), planned_looks=1).threshold_plan
    assert one_look.final_alpha(1) == pytest.approx(0.03 / 3 * 0.6)  # no late window to fund
    two_checks = Judge(JudgeConfig(alpha=0.03, max_health_failure_share=False), planned_looks=5)
    assert two_checks.threshold_plan.alpha == pytest.approx(0.03 / 2)
    comparison = the_judge.comparison_plan
    assert comparison.alpha == pytest.approx(0.005 / 2)  # both comparison tests
    spent = [comparison.cumulative_alpha(look) for look in range(1, 6)]
    # Lan-DeMets spends all of the sequential 40 % by the end, the last look adds 40 %.
    assert sum(spent[:4]) < 0.005 / 2 * 0.4
    assert sum(spent) == pytest.approx(0.005 / 2 * 0.8)
    late = sum(comparison.late_alpha(look) or 0.0 for look in range(1, 6))
    assert late == pytest.approx(0.005 / 2 * 0.2)
    # Router evidence alone has no per-request latencies: its latency comparison compares
    # averages (no test), so Fisher's comparison of the error rates has the whole budget.
    router_only = Judge(JudgeConfig(evidence=("router",)), planned_looks=5).comparison_plan
    assert router_only.alpha == pytest.approx(0.005)


def test_the_last_planned_look_tests_the_whole_hold_at_the_fixed_sample_level() -> None:
    """3 errors in each of 4 looks of 100 router-counted canary requests (3 %, limit 1 %):
    the always-valid test never gets there (12 in 400 is far from its bar), but the last
    planned look also tests the hold by the exact binomial at its fixed-sample share of
    the budget, as a test that knew the hold's sample would: failed at look 4, not before."""
    from pytest_release.canary.evidence.router_stats import RouterEvidence, spread

    config = JudgeConfig(evidence=("router",), max_restarts=None)
    the_judge = Judge(config, planned_looks=4)
    samples: list[Sample] = []
    verdicts = []
    for look in range(1, 5):
        start = T0 + (look - 1) * MINUTE
        end = start + MINUTE
        samples += spread("canary", "c", start, end - 1e-3, 100, 3)
        samples += spread("stable", "s", start, end - 1e-3, 300, 0)
        evidence = RouterEvidence(samples=tuple(samples), latencies=(), reads=look)
        verdict = the_judge.judge_interval([], [], start, end, look=look, router=evidence)
        verdicts.append(check(verdict, "error_rate"))
    assert [v.verdict for v in verdicts[:3]] == ["pass", "pass", "pass"], verdicts
    last = verdicts[3]
    assert last.verdict == "fail", last
    assert "exact binomial, the planned end confidence bound" in last.message
    assert "(since the hold began) (n=400, 12 errors" in last.message


def test_false_alarm_rate_of_the_thresholds_at_the_limit_stays_below_alpha() -> None:
    """The hardest null case: the canary's true error rate is exactly the limit (5 %).
    Seeded holds of 6 looks; the share of holds failing error_rate at any look stays at
    or below alpha, while testing every look at the full alpha exceeds it."""
    looks, runs, alpha = 6, 200, 0.1
    base = {
        "max_error_rate": 0.05,
        "max_health_failure_share": False,
        "max_consecutive_health_failures": False,
        "max_restarts": False,
        "sustained_error_rate": 1.0,
        "comparison": {"enabled": False},
    }

    def hold(config: JudgeConfig, rng: random.Random) -> bool:
        the_judge = Judge(config, planned_looks=looks)
        history: list[Sample] = []
        for look in range(looks):
            start = T0 + look * MINUTE
            current = noisy(rng, start, start + MINUTE, "canary", per_second=2.0, error=0.05)
            history += current
            verdict = the_judge.judge_interval(current, [], start, start + MINUTE, history)
            if check(verdict, "error_rate").verdict == "fail":
                return True
        return False

    rng = random.Random(20261201)
    config = JudgeConfig.model_validate({**base, "alpha": alpha})
    alarms = sum(hold(config, rng) for _ in range(runs))
    assert alarms / runs <= alpha, f"{alarms} false alarms in {runs} holds"
    # Naive: each test at nearly the full alpha (0.95 over 2 checks, 2 windows, 6 looks
    # would be 0.04 per test; 0.95 is the most the config allows).
    naive = JudgeConfig.model_validate({**base, "alpha": 0.95})
    rng = random.Random(20261201)
    naive_alarms = sum(hold(naive, rng) for _ in range(runs))
    assert naive_alarms > alarms


class TestStageCanStillPass:
    def test_none_while_the_stage_can_pass(self) -> None:
        the_judge = judge(max_insufficient_intervals=1)
        ok = interval(T0, "pass")
        lacking = interval(T0 + MINUTE, "insufficient")
        assert the_judge.stage_can_still_pass([], remaining_looks=3) is None
        assert the_judge.stage_can_still_pass([ok, lacking], remaining_looks=1) is None
        assert the_judge.stage_can_still_pass([lacking], remaining_looks=1) is None

    def test_too_many_insufficient_intervals_stop_the_stage_early(self) -> None:
        the_judge = judge(max_insufficient_intervals=1)
        lacking = [interval(T0, "insufficient"), interval(T0 + MINUTE, "insufficient")]
        reason = the_judge.stage_can_still_pass(lacking, remaining_looks=8)
        assert reason == (
            "2 of 2 intervals so far had insufficient evidence, more than "
            "judge.max_insufficient_intervals = 1 allows: the stage can no longer pass, "
            "8 looks early"
        )
        assert the_judge.judge_stage(lacking).verdict == "insufficient"

    def test_a_failed_interval_cannot_pass(self) -> None:
        reason = judge().stage_can_still_pass([interval(T0, "fail")], remaining_looks=4)
        assert reason is not None
        assert reason.startswith("an interval failed (12:00:00-12:01:00 UTC)")

    def test_no_look_left_and_no_pass(self) -> None:
        the_judge = judge(max_insufficient_intervals=2)
        lacking = [interval(T0, "insufficient")]
        assert the_judge.stage_can_still_pass(lacking, remaining_looks=1) is None
        assert the_judge.stage_can_still_pass(lacking, remaining_looks=0) == (
            "no interval passed in 1 looks and none remains"
        )

    def test_negative_remaining_looks_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            judge().stage_can_still_pass([], remaining_looks=-1)


def test_alerts_check_says_what_fired_what_was_asked_or_why_it_cannot_tell() -> None:
    from pytest_release.canary.evidence.alertmanager import Alert, AlertsRead
    from pytest_release.canary.judge.alerts import alerts_check

    burning = Alert("CanaryBurning", {"service": "shop"}, "2026-12-07T03:00:00Z")
    fired = alerts_check([AlertsRead(T0), AlertsRead(T0 + 1, (burning,))], T0, T0 + 10)
    assert (fired.verdict, fired.value, fired.samples) == ("fail", 1.0, 2)
    assert fired.message.startswith("alertmanager: 1 matching alert(s) firing during the hold")
    assert fired.message.endswith(
        ': CanaryBurning {service="shop"} firing since 2026-12-07T03:00:00Z'
    )
    assert dict(fired.details)["CanaryBurning.since"] == "2026-12-07T03:00:00Z"

    quiet = alerts_check([AlertsRead(T0), AlertsRead(T0 + 1, error="refused")], T0, T0 + 10)
    assert (quiet.verdict, quiet.value, quiet.details) == ("pass", 0.0, ())
    assert quiet.message.endswith("(2 asks, 1 failed)")

    unasked = alerts_check([AlertsRead(T0, error="refused")], T0, T0 + 10)
    assert unasked.verdict == "insufficient"
    assert unasked.message.endswith(": refused")
    assert "could not tell whether an alert fired" in unasked.message

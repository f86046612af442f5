"""Limits applied to Locust's measurements: one verdict per endpoint, one for the run.

An endpoint passes only with at least ``min_requests`` requests, a failure share below
``error_rate_below`` and every configured percentile below its limit.  Fewer requests
is insufficient evidence and fails (a load test that measured too little must not
look green).  Percentiles are Locust's own approximations (rounded to two significant
digits above 100 ms).
"""

from __future__ import annotations

from pytest_release.gates.perf.config import STATUS_NAME, Limits, PerfGateConfig
from pytest_release.gates.perf.runner import EndpointStats, PerfOutcome
from pytest_release.gates.tool_verdict import Verdict


def status_verdict(outcome: PerfOutcome, report: str) -> Verdict:
    properties: tuple[tuple[str, object], ...] = (
        ("perf_report", report),
        ("perf_requests", outcome.total_requests),
        ("perf_endpoints", len(outcome.endpoints)),
        ("perf_duration_s", round(outcome.duration, 1)),
    )
    if outcome.problem is not None:
        return Verdict("failed", outcome.problem, properties)
    return Verdict(
        "passed",
        f"Locust ran {outcome.total_requests} requests to {len(outcome.endpoints)} "
        f"endpoint(s) in {outcome.duration:.1f}s; report: {report}",
        properties,
    )


def endpoint_verdict(outcome: PerfOutcome, key: str, limits: Limits, report: str) -> Verdict:
    if outcome.problem is not None:
        return Verdict(
            "skipped",
            f"not judged: the Locust run failed (why is reported once, by {STATUS_NAME})",
        )
    stats = outcome.find(key)
    if stats is None:
        seen = ", ".join(e.key for e in outcome.endpoints) or "none"
        return Verdict(
            "failed",
            f"{key}: insufficient evidence: Locust recorded no request with this method and "
            f"name (it measured: {seen}); make the locustfile request it (name= sets "
            "the name) or remove it from endpoints",
            (("perf_report", report), ("perf_requests", 0)),
        )
    problems = check(stats, limits)
    properties = _properties(stats, report)
    if problems:
        return Verdict("failed", f"{key}: " + "; ".join(problems) + _summary(stats), properties)
    return Verdict("passed", f"{key}: within limits" + _summary(stats), properties)


def others_verdict(outcome: PerfOutcome, known: set[str], gate: PerfGateConfig) -> Verdict:
    """The endpoints Locust measured that have no item of their own (names known only at
    run time), each against the gate's limits."""
    if outcome.problem is not None:
        return Verdict(
            "skipped",
            f"not judged: the Locust run failed (why is reported once, by {STATUS_NAME})",
        )
    others = [e for e in outcome.endpoints if e.key not in known]
    if not others:
        return Verdict("passed", "every endpoint Locust measured has its own item")
    lines: list[str] = []
    failing = 0
    for stats in others:
        problems = check(stats, gate.limits(stats.key))
        failing += bool(problems)
        state = "; ".join(problems) if problems else "within limits"
        lines.append(f"{stats.key}: {state}{_summary(stats)}")
    head = (
        f"{failing} of {len(others)} endpoint(s) without an item of their own fail:"
        if failing
        else f"{len(others)} endpoint(s) without an item of their own, all within limits:"
    )
    properties = (("perf_other_endpoints", len(others)), ("perf_other_failing", failing))
    return Verdict("failed" if failing else "passed", "\n".join([head, *lines]), properties)


def check(stats: EndpointStats, limits: Limits) -> list[str]:
    """What is wrong with ``stats`` under ``limits`` (empty: it passes)."""
    if stats.requests < limits.min_requests:
        return [
            f"insufficient evidence: {stats.requests} request(s), fewer than min_requests = "
            f"{limits.min_requests} (raise duration or users)"
        ]
    problems: list[str] = []
    if stats.error_rate >= limits.error_rate_below:
        problems.append(
            f"{stats.error_rate:.1%} of requests failed ({stats.failures} of {stats.requests}), "
            f"limit < {limits.error_rate_below:.1%}" + _errors(stats)
        )
    for label, value, limit in (
        ("p50", stats.p50, limits.p50_below_ms),
        ("p95", stats.p95, limits.p95_below_ms),
        ("p99", stats.p99, limits.p99_below_ms),
    ):
        if limit is None:
            continue
        if value is None:
            problems.append(f"{label} unknown (Locust reported none), limit < {limit:g} ms")
        elif value >= limit:
            problems.append(f"{label} = {value:g} ms, limit < {limit:g} ms")
    return problems


def _errors(stats: EndpointStats) -> str:
    if not stats.errors:
        return ""
    shown = ", ".join(f"{count}x {message}" for message, count in stats.errors[:3])
    return f" [{shown}]"


def _summary(stats: EndpointStats) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:g} ms"

    return (
        f" ({stats.requests} requests, {stats.error_rate:.1%} failed, p50 {ms(stats.p50)}, "
        f"p95 {ms(stats.p95)}, p99 {ms(stats.p99)})"
    )


def _properties(stats: EndpointStats, report: str) -> tuple[tuple[str, object], ...]:
    return (
        ("perf_report", report),
        ("perf_requests", stats.requests),
        ("perf_failures", stats.failures),
        ("perf_error_rate", round(stats.error_rate, 6)),
        ("perf_p50_ms", stats.p50),
        ("perf_p95_ms", stats.p95),
        ("perf_p99_ms", stats.p99),
    )

"""The canary's Markdown for ``$GITHUB_STEP_SUMMARY``: one table row per interval, failed
/health probes per replica, and Mermaid charts of canary versus stable."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pytest_release.canary.judge import (
    CanaryVerdict,
    CheckResult,
    format_ms,
    format_percent,
    format_window,
)
from pytest_release.canary.plot import (
    BADGE,
    IntervalPoint,
    format_number,
    health_probes,
    interval_points,
)
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import IntervalStats

# The artifact the stage action keeps the reports in (github.REPORTS_ARTIFACT_ENV; the
# engine does not import the spine's github module).
REPORTS_ARTIFACT_ENV = "PYTEST_RELEASE_REPORTS_ARTIFACT"

# -- Markdown -----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(check: CheckResult) -> str:
    def number(value: float | None) -> str:
        if value is None:
            return "-"
        if check.unit == "%":
            return format_percent(value / 100.0)
        if check.unit == "ms":
            return format_ms(value)
        if check.unit == "p":
            return f"p={value:.2g}"
        return f"{format_number(value)} {check.unit}"

    return f"{check.name} {number(check.value)} (limit {number(check.threshold)})"


def _stats_cells(stats: IntervalStats) -> list[str]:
    return [
        str(stats.requests),
        "-" if stats.error_rate is None else format_percent(stats.error_rate),
        "-" if stats.p95_ms is None else format_ms(stats.p95_ms),
    ]


def markdown_summary(
    verdicts: Sequence[CanaryVerdict],
    samples: Sequence[Sample],
    *,
    svg_path: str | None = None,
    title: str = "Canary metrics",
    stage_verdict: CanaryVerdict | None = None,
    artifact: str | None = None,
) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: one table row per interval (canary and
    stable requests, error rate, p95, verdict, failing checks), the reasons for failing
    intervals, and where the SVG plot is (``artifact``: the one holding the reports;
    None: the one the stage action names in the environment, if any)."""
    if artifact is None:
        artifact = os.environ.get(REPORTS_ARTIFACT_ENV) or None
    lines = [f"### {title}", ""]
    if stage_verdict is not None:
        lines += [f"**Stage verdict: {BADGE[stage_verdict.verdict]}**", ""]
    points = interval_points(samples, verdicts)
    if not points:
        lines.append("_No interval was judged._")
    else:
        lines += [
            "| # | window | verdict | canary req | canary err | canary p95 "
            "| stable req | stable err | stable p95 | checks not passed |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for point in points:
            v = point.verdict
            not_passed = [c for c in v.checks if c.verdict != "pass"]
            notes = ", ".join(
                _short(c) if c.verdict == "fail" else f"{c.name} (insufficient)" for c in not_passed
            )
            cells = [
                str(point.index),
                format_window(v.window_start, v.window_end),
                BADGE[v.verdict],
                *_stats_cells(point.canary),
                *_stats_cells(point.stable),
                notes,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        reasons = [p for p in points if p.verdict.verdict != "pass"]
        if reasons:
            lines += ["", "<details><summary>Why intervals did not pass</summary>", ""]
            for point in reasons:
                lines.append(f"- **Interval {point.index}** ({point.verdict.verdict}):")
                wanted = "fail" if point.verdict.verdict == "fail" else "insufficient"
                lines += [f"  - {c.message}" for c in point.verdict.checks if c.verdict == wanted]
            lines += ["", "</details>"]
    health = health_probes(samples)
    if health:
        lines += [
            "",
            "| replica | version | /health probes | failed | failed share | longest failing run |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {_cell(h.replica)} | {h.target} | {h.probes} | {h.failed} | "
            f"{format_percent(h.share)} | {h.longest_run} |"
            for h in health
        ]
    if points:
        lines += ["", *mermaid_charts(points)]
    if svg_path:
        # A link to the file would 404 (it is on the runner, or inside a zip artifact):
        # say where it is; the Mermaid charts above show the same series inline.
        where = f"in the artifact `{artifact}`" if artifact else "on the runner"
        lines += [
            "",
            f"Plot of error rate and p95 latency per interval (SVG): `{svg_path}` {where}.",
        ]
    return "\n".join(lines) + "\n"


def mermaid_charts(points: Sequence[IntervalPoint]) -> list[str]:
    """Canary (first line) and stable (second line) error rate and p95 per interval as
    Mermaid ``xychart-beta`` blocks: GitHub renders them in the step summary itself,
    where a local SVG file cannot be shown.  Intervals without data plot as 0."""

    def series(values: list[float | None]) -> str:
        return "[" + ", ".join(f"{v:.2f}" if v is not None else "0" for v in values) + "]"

    def error_pct(stats: IntervalStats) -> float | None:
        return None if stats.error_rate is None else stats.error_rate * 100

    def p95(stats: IntervalStats) -> float | None:
        return stats.p95_ms

    axis = "[" + ", ".join(f'"{p.index}"' for p in points) + "]"
    charts: list[str] = []
    metrics: tuple[tuple[str, str, Callable[[IntervalStats], float | None]], ...] = (
        ("Error rate, canary vs stable", "%", error_pct),
        ("p95 latency, canary vs stable", "ms", p95),
    )
    for title, unit, pick in metrics:
        canary = [pick(p.canary) for p in points]
        stable = [pick(p.stable) for p in points]
        top = max([v for v in canary + stable if v is not None] or [1.0]) * 1.2 or 1.0
        charts += [
            "```mermaid",
            "xychart-beta",
            f'    title "{title} (first line: canary)"',
            f'    x-axis "interval" {axis}',
            f'    y-axis "{unit}" 0 --> {top:.2f}',
            f"    line {series(canary)}",
            f"    line {series(stable)}",
            "```",
        ]
    return charts

"""Hold progress on a TTY (live line rewritten with carriage returns) and in CI logs (one
line per interval), written to StringIO-backed writers."""

from __future__ import annotations

import io

from _pytest._io import TerminalWriter

from pytest_release.canary.judge import CanaryVerdict, Judge, JudgeConfig
from pytest_release.canary.progress import (
    HoldProgress,
    IntervalStats,
    format_clock,
    interval_stats,
)
from tests.canary.judge_support import T0, health, healthy_interval, probes, status, traffic

CANARY = IntervalStats(requests=412, errors=2, error_rate=2 / 412, p95_ms=120.0)
STABLE = IntervalStats(requests=3700, errors=15, error_rate=15 / 3700, p95_ms=110.0)
EMPTY = IntervalStats(requests=0, errors=0, error_rate=None, p95_ms=None)


def passing_verdict() -> CanaryVerdict:
    return Judge(JudgeConfig()).judge_interval(
        healthy_interval(T0, T0 + 60), [status(T0)], T0, T0 + 60
    )


def failing_verdict() -> CanaryVerdict:
    samples = [
        *traffic(T0 + 60, T0 + 120, "canary", fail=lambda i: i % 10 == 0),
        *traffic(T0 + 60, T0 + 120, "stable", per_second=6.0),
        *probes(T0 + 60, T0 + 120),
        health(T0 + 61, ok=False),
        health(T0 + 62, ok=False),
    ]
    return Judge(JudgeConfig()).judge_interval(samples, [status(T0)], T0 + 60, T0 + 120)


def test_clock_format() -> None:
    assert format_clock(0) == "00:00"
    assert format_clock(192.4) == "03:12"
    assert format_clock(900) == "15:00"
    assert format_clock(3725) == "1:02:05"
    assert format_clock(-3) == "00:00"


def test_tty_rewrites_one_live_line_and_keeps_interval_lines() -> None:
    out = io.StringIO()
    progress = HoldProgress(out, hold_seconds=900, is_tty=True, width=200)
    progress.update(5, EMPTY, EMPTY)
    first = out.getvalue()
    assert first == (
        "\rcanary hold 00:05/15:00 (14:55 left) | canary: no requests yet | stable: no requests yet"
    )
    progress.update(30, CANARY, STABLE)
    second = out.getvalue()[len(first) :]
    line = (
        "canary hold 00:30/15:00 (14:30 left) | canary: 412 req, 0.5% err, p95 120 ms | "
        "stable: 3700 req, 0.4% err, p95 110 ms"
    )
    assert second.startswith("\r" + line)
    assert "\n" not in out.getvalue(), "the live line must be rewritten, not appended"

    progress.update(60, CANARY, STABLE)
    progress.interval_done(passing_verdict())
    text = out.getvalue()
    # The live line is erased, then the interval's permanent line ends with a newline.
    assert text.endswith(
        "canary hold 01:00/15:00 (14:00 left) | canary: 412 req, 0.5% err, p95 120 ms | "
        "stable: 3700 req, 0.4% err, p95 110 ms | interval 1 12:00:00-12:01:00 UTC: pass"
        " | /health failed: canary-0 0/12 (0.0%)\n"
    )
    assert text.count("\n") == 1

    progress.update(65, CANARY, STABLE)
    progress.close()
    progress.close()  # idempotent
    assert out.getvalue().endswith(
        "(13:55 left) | canary: 412 req, 0.5% err, p95 120 ms | "
        "stable: 3700 req, 0.4% err, p95 110 ms\n"
    )
    assert out.getvalue().count("\n") == 2


def test_shorter_live_line_is_padded_over_the_longer_one() -> None:
    out = io.StringIO()
    progress = HoldProgress(out, hold_seconds=60, is_tty=True, width=200)
    progress.update(1, CANARY, STABLE)
    long_length = len(out.getvalue()) - 1
    progress.update(2, EMPTY, EMPTY)
    last = out.getvalue().rsplit("\r", 1)[1]
    assert len(last) == long_length
    assert last.rstrip().endswith("stable: no requests yet")


def test_non_tty_writes_one_line_per_interval() -> None:
    out = io.StringIO()
    progress = HoldProgress(out, hold_seconds=120, is_tty=False, label="canary-1 hold")
    for second in range(1, 60):
        progress.update(second, CANARY, STABLE)
    assert out.getvalue() == "", "no live updates in CI logs"
    progress.interval_done(passing_verdict())
    progress.update(120, CANARY, STABLE)
    progress.interval_done(failing_verdict())
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == (
        "canary-1 hold 00:59/02:00 (01:01 left) | canary: 412 req, 0.5% err, p95 120 ms | "
        "stable: 3700 req, 0.4% err, p95 110 ms | interval 1 12:00:00-12:01:00 UTC: pass"
        " | /health failed: canary-0 0/12 (0.0%)"
    )
    assert lines[1].startswith("canary-1 hold 02:00/02:00 (00:00 left)")
    # Failed /health probes per replica, as count and share, even without a long run.
    assert lines[1].endswith(
        "interval 2 12:01:00-12:02:00 UTC: fail | /health failed: canary-0 2/14 (14.3%)"
    )
    # The reason follows a failing interval, indented.
    assert lines[2].startswith("    canary error rate 10.0% > 1.0%: the lower ")
    assert lines[3].startswith("    canary error rate 10.0% significantly higher than stable 0.0%")
    assert len(lines) == 4


def test_works_with_pytest_terminal_writer_and_its_width() -> None:
    out = io.StringIO()
    writer = TerminalWriter(file=out)
    writer.fullwidth = 60
    progress = HoldProgress(writer, hold_seconds=900, is_tty=True)
    progress.update(30, CANARY, STABLE)
    live = out.getvalue()
    assert live.startswith("\r00:30/15:00 | canary 0.5% err p95 120ms | stable")
    assert len(live) == 1 + 59  # fitted to the terminal width: a wrapped line can't be rewritten
    assert live.endswith("…")


def test_live_line_fits_80_columns_with_both_versions_and_follows_a_resize() -> None:
    """Issue 30: at 80 columns the live line was cut after ``| st…``; it now takes a
    narrower form that shows both versions' numbers, and an interval's permanent line is
    not cut (it may wrap: only the live line is rewritten)."""
    out = io.StringIO()
    writer = TerminalWriter(file=out)
    writer.fullwidth = 80
    progress = HoldProgress(writer, hold_seconds=900, is_tty=True, label="canary-1 hold")
    progress.update(30, CANARY, STABLE)
    live = out.getvalue().rsplit("\r", 1)[1]
    assert live == "00:30/15:00 | canary 0.5% err p95 120ms | stable 0.4% err p95 110ms"
    assert len(live) <= 79
    writer.fullwidth = 120  # the terminal was widened during the hold
    progress.update(31, CANARY, STABLE)
    assert out.getvalue().rsplit("\r", 1)[1].startswith("canary-1 hold 00:31/15:00 (14:29 left)")
    writer.fullwidth = 80
    progress.update(60, CANARY, STABLE)
    progress.interval_done(passing_verdict())
    permanent = out.getvalue().rsplit("\r", 1)[1]
    assert permanent.endswith(
        "| interval 1 12:00:00-12:01:00 UTC: pass | /health failed: canary-0 0/12 (0.0%)\n"
    )
    assert "…" not in permanent


def test_terminal_reporter_width_is_found_and_ci_lines_are_not_cut() -> None:
    out = io.StringIO()
    writer = TerminalWriter(file=out)
    writer.fullwidth = 70

    class Reporter:  # the shape of pytest's TerminalReporter: write() over a _tw writer
        _tw = writer

        def write(self, content: str) -> None:
            writer.write(content)

    assert HoldProgress(Reporter(), hold_seconds=60, is_tty=True).width == 70
    ci = HoldProgress(Reporter(), hold_seconds=60, is_tty=False)
    ci.update(60, CANARY, STABLE)
    ci.interval_done(passing_verdict())
    assert len(out.getvalue().splitlines()[0]) > 70


def test_interval_stats_from_samples_feed_the_line() -> None:
    samples = [
        *traffic(T0, T0 + 10, "canary", fail=lambda i: i == 0),
        *traffic(T0, T0 + 10, "stable", per_second=4.0),
    ]
    canary = interval_stats(samples, "canary")
    stable = interval_stats(samples, "stable")
    assert (canary.requests, canary.errors, stable.requests) == (20, 1, 40)
    out = io.StringIO()
    HoldProgress(out, hold_seconds=10, is_tty=True, width=200).update(10, canary, stable)
    assert "canary: 20 req, 5.0% err, p95 26 ms | stable: 40 req, 0.0% err, p95 26 ms" in (
        out.getvalue()
    )

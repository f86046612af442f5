"""Terminal progress during a canary hold.

On a TTY one live line is rewritten in place (carriage return) with elapsed and remaining
time and the current error rate and p95 latency of canary and stable; every finished
interval leaves one permanent line with its verdict and the failed /health probes of every
canary replica since the hold began (count and share of probes, so flapping shows even
when no run of failures is long).  Elsewhere (CI logs) nothing is
rewritten: one line per interval.

The writer is anything with ``write(str)``: pytest's ``TerminalWriter`` or
``TerminalReporter``, or an ``io.StringIO``.
"""

from __future__ import annotations

import shutil
from typing import Protocol

from pytest_release.canary.judge import CanaryVerdict, format_ms, format_percent, format_window
from pytest_release.canary.stats import IntervalStats, interval_stats

__all__ = ["HoldProgress", "IntervalStats", "format_health", "format_stats", "interval_stats"]


class TextWriter(Protocol):
    def write(self, text: str, /) -> object: ...


def format_clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from one hour)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_stats(name: str, stats: IntervalStats | None) -> str:
    if stats is None or not stats.has_data:
        return f"{name}: no requests yet"
    parts = [f"{stats.requests} req"]
    if stats.error_rate is not None:
        parts.append(f"{format_percent(stats.error_rate)} err")
    parts.append(f"p95 {format_ms(stats.p95_ms)}" if stats.p95_ms is not None else "p95 -")
    return f"{name}: {', '.join(parts)}"


def compact_stats(name: str, stats: IntervalStats | None, requests: bool) -> str:
    """``canary 412 req 0.5% err p95 120ms`` (without the request count when not
    ``requests``): the live line's narrow forms."""
    if stats is None or not stats.has_data:
        return f"{name} -"
    parts = [name, f"{stats.requests} req"] if requests else [name]
    if stats.error_rate is not None:
        parts.append(f"{format_percent(stats.error_rate)} err")
    if stats.p95_ms is not None:
        parts.append(f"p95 {format_ms(stats.p95_ms).replace(' ', '')}")
    return " ".join(parts)


def health_by_replica(verdict: CanaryVerdict) -> list[tuple[str, int, int]]:
    """(replica, failed, probes) from the verdict's ``health_failure_share`` check."""
    check = verdict.check("health_failure_share")
    if check is None:
        return []
    values = dict(check.details)
    replicas = [key.removesuffix(".probes") for key in values if key.endswith(".probes")]
    return [
        (replica, int(values.get(f"{replica}.failed", "0")), int(values[f"{replica}.probes"]))
        for replica in replicas
    ]


def format_health(verdict: CanaryVerdict) -> str:
    """``/health failed: canary-0 3/60 (5.0%)``, or "" without health data."""
    parts = [
        f"{replica} {failed}/{probes} ({format_percent(failed / probes if probes else 0.0)})"
        for replica, failed, probes in health_by_replica(verdict)
    ]
    return f"/health failed: {', '.join(parts)}" if parts else ""


def _terminal_width(writer: object, is_tty: bool) -> int | None:
    """pytest's TerminalWriter has ``fullwidth``; its TerminalReporter wraps one in ``_tw``."""
    for candidate in (writer, getattr(writer, "_tw", None)):
        width = getattr(candidate, "fullwidth", None)
        if isinstance(width, int) and width > 0:
            return width
    return shutil.get_terminal_size().columns if is_tty else None


class HoldProgress:
    """Shows a hold's progress; see the module docstring."""

    def __init__(
        self,
        writer: TextWriter,
        hold_seconds: float,
        is_tty: bool,
        *,
        label: str = "canary hold",
        width: int | None = None,
    ) -> None:
        self.writer = writer
        self.hold_seconds = max(0.0, hold_seconds)
        self.is_tty = is_tty
        self.label = label
        self._width = width  # None: the terminal's, asked at every line (it may be resized)
        self.intervals = 0
        self._elapsed = 0.0
        self._canary: IntervalStats | None = None
        self._stable: IntervalStats | None = None
        self._live_length = 0  # characters of the live line currently shown (TTY)
        self._closed = False

    # -- public ----------------------------------------------------------------------------
    @property
    def width(self) -> int | None:
        """The terminal's width in columns (None: not a terminal, lines are not fitted)."""
        return self._width if self._width is not None else _terminal_width(self.writer, self.is_tty)

    def update(self, elapsed: float, canary: IntervalStats, stable: IntervalStats) -> None:
        """New measurements; redraws the live line on a TTY, remembers them otherwise."""
        self._elapsed = max(0.0, elapsed)
        self._canary, self._stable = canary, stable
        if self.is_tty and not self._closed:
            self._show_live(self._live_line())

    def interval_done(self, verdict: CanaryVerdict) -> None:
        """One permanent line for the finished interval (plus the reason when it did not
        pass)."""
        if self._closed:
            return
        self.intervals += 1
        window = format_window(verdict.window_start, verdict.window_end)
        line = f"{self._status_line()} | interval {self.intervals} {window}: {verdict.verdict}"
        health = format_health(verdict)
        if health:
            line += f" | {health}"
        lines = [line]  # a permanent line may wrap: only the live line is rewritten
        if verdict.verdict != "pass":
            lines.extend(f"    {text}" for text in verdict.failure_message().splitlines())
        self._clear_live()
        self._write("\n".join(lines) + "\n")

    def close(self) -> None:
        """End the live line (it stays visible with the last numbers).  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.is_tty and self._live_length:
            self._write("\n")
            self._live_length = 0

    # -- internals -------------------------------------------------------------------------
    def _status_line(self) -> str:
        remaining = max(0.0, self.hold_seconds - self._elapsed)
        clock = (
            f"{self.label} {format_clock(self._elapsed)}/{format_clock(self.hold_seconds)} "
            f"({format_clock(remaining)} left)"
        )
        return (
            f"{clock} | {format_stats('canary', self._canary)} | "
            f"{format_stats('stable', self._stable)}"
        )

    def _live_line(self) -> str:
        """The status line in the longest form that fits the terminal: in full, then
        without the time left and punctuation, then errors and p95 only, then without the
        label; cut with "…" only when even that is too wide."""
        clock = f"{format_clock(self._elapsed)}/{format_clock(self.hold_seconds)}"
        forms = [
            self._status_line(),
            f"{self.label} {clock} | {compact_stats('canary', self._canary, True)} | "
            f"{compact_stats('stable', self._stable, True)}",
            f"{self.label} {clock} | {compact_stats('canary', self._canary, False)} | "
            f"{compact_stats('stable', self._stable, False)}",
            f"{clock} | {compact_stats('canary', self._canary, False)} | "
            f"{compact_stats('stable', self._stable, False)}",
        ]
        width = self.width
        if width:
            for form in forms:
                if len(form) <= width - 1:
                    return form
        return self._fit(forms[-1] if width else forms[0])

    def _fit(self, line: str) -> str:
        """On a TTY a line wider than the terminal would wrap and break the rewrite."""
        if self.is_tty and self.width and self.width > 10 and len(line) > self.width - 1:
            return line[: self.width - 2] + "…"
        return line

    def _show_live(self, line: str) -> None:
        line = self._fit(line)
        padding = " " * max(0, self._live_length - len(line))
        self._write(f"\r{line}{padding}")
        self._live_length = len(line)

    def _clear_live(self) -> None:
        if self.is_tty and self._live_length:
            self._write("\r" + " " * self._live_length + "\r")
            self._live_length = 0

    def _write(self, text: str) -> None:
        self.writer.write(text)
        flush = getattr(self.writer, "flush", None)
        if callable(flush):
            flush()

"""Canary metrics over the hold: an SVG plot and a Markdown table for the step summary.

The SVG is written with the standard library only (``xml.etree``): two panels, error rate
(%) and p95 latency (ms) per interval, canary and stable as two series, the judge's
thresholds as dashed lines, failed intervals shaded red and insufficient ones grey.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_release.canary.judge import (
    CanaryVerdict,
    Verdict,
    format_percent,
    format_window,
)
from pytest_release.canary.progress import format_clock
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import IntervalStats, interval_stats

SVG_NS = "http://www.w3.org/2000/svg"
COLORS = {"canary": "#e8590c", "stable": "#1c7ed6", "threshold": "#c92a2a"}
BANDS = {"fail": "#fa5252", "insufficient": "#adb5bd"}
_WIDTH, _PANEL_HEIGHT = 760, 210
_LEFT, _RIGHT, _TOP, _GAP, _BOTTOM = 70, 110, 46, 56, 64
BADGE: dict[Verdict, str] = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "insufficient": "⚠️ insufficient",
}


@dataclass(frozen=True)
class IntervalPoint:
    """One judged interval with the canary and stable numbers measured in it."""

    index: int  # 1-based
    verdict: CanaryVerdict
    canary: IntervalStats
    stable: IntervalStats


def interval_points(
    samples: Sequence[Sample], verdicts: Sequence[CanaryVerdict]
) -> list[IntervalPoint]:
    return [
        IntervalPoint(
            index=i,
            verdict=v,
            canary=interval_stats(
                samples, "canary", window_start=v.window_start, window_end=v.window_end
            ),
            stable=interval_stats(
                samples, "stable", window_start=v.window_start, window_end=v.window_end
            ),
        )
        for i, v in enumerate(verdicts, start=1)
    ]


def _threshold(verdicts: Sequence[CanaryVerdict], name: str) -> float | None:
    for verdict in verdicts:
        check = verdict.check(name)
        if check is not None and check.threshold is not None:
            return check.threshold
    return None


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * magnitude >= value:
            return step * magnitude
    return 10.0 * magnitude


@dataclass(frozen=True)
class _Metric:
    label: str
    name: str  # the judge check whose threshold is drawn
    value_of: Callable[[IntervalStats], float | None]
    threshold: float | None
    fmt: Callable[[float], str]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
    )
    if text is not None:
        element.text = text
    return element


def format_number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") or "0"


class _Panel:
    def __init__(
        self, top: float, x_max: float, y_max: float, plot_width: float, plot_height: float
    ) -> None:
        self.top = top
        self.x_max = x_max if x_max > 0 else 1.0
        self.y_max = y_max
        self.width = plot_width
        self.height = plot_height

    def x(self, seconds: float) -> float:
        return _LEFT + self.width * min(max(seconds, 0.0), self.x_max) / self.x_max

    def y(self, value: float) -> float:
        return self.top + self.height * (1.0 - min(max(value, 0.0), self.y_max) / self.y_max)


@dataclass(frozen=True)
class HealthProbes:
    """/health probes of one replica over the hold: how many, how many failed, and the
    longest run of failures (flapping shows as a high share with short runs)."""

    replica: str
    target: str
    probes: int
    failed: int
    longest_run: int

    @property
    def share(self) -> float:
        return self.failed / self.probes if self.probes else 0.0

    def text(self) -> str:
        return (
            f"{self.replica} {self.failed} of {self.probes} failed "
            f"({format_percent(self.share)}, longest run {self.longest_run})"
        )


def health_probes(samples: Sequence[Sample]) -> list[HealthProbes]:
    """Per replica (canary first), from the /health samples."""
    by_replica: dict[tuple[str, str], list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: s.timestamp):
        if sample.kind == "health":
            key = (sample.target, sample.replica or sample.target)
            by_replica.setdefault(key, []).append(sample)
    result = []
    for (target, replica), probes in sorted(
        by_replica.items(), key=lambda kv: (kv[0][0] != "canary", kv[0][1])
    ):
        run = longest = 0
        for probe in probes:
            run = 0 if probe.ok else run + 1
            longest = max(longest, run)
        failed = sum(1 for p in probes if not p.ok)
        result.append(HealthProbes(replica, target, len(probes), failed, longest))
    return result


def render_svg(samples: Sequence[Sample], verdicts: Sequence[CanaryVerdict], title: str) -> str:
    """The plot as an SVG document (a string)."""
    points = interval_points(samples, verdicts)
    plot_width = _WIDTH - _LEFT - _RIGHT
    height = _TOP + 2 * _PANEL_HEIGHT + _GAP + _BOTTOM
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": str(_WIDTH),
            "height": str(height),
            "viewBox": f"0 0 {_WIDTH} {height}",
            "font-family": "sans-serif",
            "font-size": "12",
        },
    )
    _sub(svg, "title", title)
    _sub(svg, "rect", x="0", y="0", width=str(_WIDTH), height=str(height), fill="white")
    _sub(svg, "text", title, x=str(_LEFT), y="22", font_size="15", font_weight="bold")
    health = health_probes(samples)
    if health:
        _sub(
            svg,
            "text",
            "/health: " + "; ".join(h.text() for h in health),
            x=str(_LEFT),
            y="38",
            font_size="11",
            class_="health",
        )
    if not points:
        _sub(
            svg,
            "text",
            "no interval was judged",
            x=str(_LEFT),
            y=str(_TOP + _PANEL_HEIGHT / 2),
            class_="empty",
        )
        return ET.tostring(svg, encoding="unicode")

    t0 = points[0].verdict.window_start
    x_max = max(p.verdict.window_end for p in points) - t0
    metrics = [
        _Metric(
            "error rate (%)",
            "error_rate",
            lambda s: None if s.error_rate is None else s.error_rate * 100.0,
            _threshold(verdicts, "error_rate"),
            lambda v: f"{format_number(v)}%",
        ),
        _Metric(
            "p95 latency (ms)",
            "p95_latency",
            lambda s: s.p95_ms,
            _threshold(verdicts, "p95_latency"),
            lambda v: f"{format_number(v)} ms",
        ),
    ]
    for number, metric in enumerate(metrics):
        top = _TOP + number * (_PANEL_HEIGHT + _GAP)
        values = [
            v
            for p in points
            for v in (metric.value_of(p.canary), metric.value_of(p.stable))
            if v is not None
        ]
        y_max = _nice_max(max([*values, metric.threshold or 0.0]) * 1.1)
        panel = _Panel(top, x_max, y_max, plot_width, _PANEL_HEIGHT)
        group = _sub(svg, "g", class_=f"panel {metric.name}", data_metric=metric.name)
        _sub(group, "text", metric.label, x=str(_LEFT), y=str(top - 8), font_weight="bold")
        _draw_bands(group, panel, points, t0)
        _draw_axes(group, panel, points, t0, metric)
        if metric.threshold is not None:
            _draw_threshold(group, panel, metric, metric.threshold)
        for target in ("stable", "canary"):  # canary on top
            _draw_series(group, panel, points, t0, target, metric)
    _draw_legend(svg, _LEFT, height - 16)
    return ET.tostring(svg, encoding="unicode")


def _draw_bands(
    group: ET.Element, panel: _Panel, points: Sequence[IntervalPoint], t0: float
) -> None:
    for point in points:
        verdict = point.verdict.verdict
        if verdict == "pass":
            continue
        x1 = panel.x(point.verdict.window_start - t0)
        x2 = panel.x(point.verdict.window_end - t0)
        band = _sub(
            group,
            "rect",
            class_=f"interval {verdict}",
            data_interval=str(point.index),
            x=f"{x1:.1f}",
            y=f"{panel.top:.1f}",
            width=f"{max(x2 - x1, 1.0):.1f}",
            height=f"{panel.height:.1f}",
            fill=BANDS[verdict],
            fill_opacity="0.25",
        )
        window = format_window(point.verdict.window_start, point.verdict.window_end)
        _sub(
            band,
            "title",
            f"interval {point.index} {window}: {verdict}\n{point.verdict.failure_message()}",
        )


def _draw_threshold(group: ET.Element, panel: _Panel, metric: _Metric, threshold: float) -> None:
    y = panel.y(threshold)
    line = _sub(
        group,
        "line",
        class_="threshold",
        data_check=metric.name,
        data_value=format_number(threshold),
        x1=str(_LEFT),
        x2=f"{_LEFT + panel.width:.1f}",
        y1=f"{y:.1f}",
        y2=f"{y:.1f}",
        stroke=COLORS["threshold"],
        stroke_width="1.5",
        stroke_dasharray="6 4",
    )
    _sub(line, "title", f"threshold {metric.fmt(threshold)}")
    _sub(
        group,
        "text",
        f"max {metric.fmt(threshold)}",
        x=f"{_LEFT + panel.width + 6:.1f}",
        y=f"{y + 4:.1f}",
        fill=COLORS["threshold"],
    )


def _draw_axes(
    group: ET.Element,
    panel: _Panel,
    points: Sequence[IntervalPoint],
    t0: float,
    metric: _Metric,
) -> None:
    right = _LEFT + panel.width
    bottom = panel.top + panel.height
    for i in range(5):
        value = panel.y_max * i / 4
        y = panel.y(value)
        _sub(
            group,
            "line",
            x1=str(_LEFT),
            x2=f"{right:.1f}",
            y1=f"{y:.1f}",
            y2=f"{y:.1f}",
            stroke="#e9ecef" if i else "#495057",
        )
        _sub(
            group, "text", metric.fmt(value), x=str(_LEFT - 6), y=f"{y + 4:.1f}", text_anchor="end"
        )
    _sub(
        group,
        "line",
        x1=str(_LEFT),
        x2=str(_LEFT),
        y1=f"{panel.top:.1f}",
        y2=f"{bottom:.1f}",
        stroke="#495057",
    )
    every = max(1, len(points) // 10)
    for point in points[::every]:
        x = panel.x(point.verdict.window_end - t0)
        _sub(
            group,
            "line",
            x1=f"{x:.1f}",
            x2=f"{x:.1f}",
            y1=f"{bottom:.1f}",
            y2=f"{bottom + 4:.1f}",
            stroke="#495057",
        )
        _sub(
            group,
            "text",
            format_clock(point.verdict.window_end - t0),
            x=f"{x:.1f}",
            y=f"{bottom + 16:.1f}",
            text_anchor="middle",
        )


def _draw_series(
    group: ET.Element,
    panel: _Panel,
    points: Sequence[IntervalPoint],
    t0: float,
    target: str,
    metric: _Metric,
) -> None:
    series = _sub(group, "g", class_=f"series {target}", data_series=target)
    segments: list[list[tuple[float, float]]] = [[]]
    for point in points:
        stats: IntervalStats = getattr(point, target)
        value = metric.value_of(stats)
        if value is None:  # no data: break the line
            if segments[-1]:
                segments.append([])
            continue
        x = panel.x(point.verdict.window_end - t0)
        y = panel.y(value)
        segments[-1].append((x, y))
        dot = _sub(
            series,
            "circle",
            cx=f"{x:.1f}",
            cy=f"{y:.1f}",
            r="3",
            fill=COLORS[target],
            data_interval=str(point.index),
            data_value=f"{value:.6g}",
        )
        _sub(
            dot,
            "title",
            f"{target}, interval {point.index}: {metric.fmt(value)} (n={stats.requests})",
        )
    for segment in segments:
        if len(segment) >= 2:
            _sub(
                series,
                "polyline",
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y in segment),
                fill="none",
                stroke=COLORS[target],
                stroke_width="2",
            )


def _draw_legend(svg: ET.Element, x: float, y: float) -> None:
    legend = _sub(svg, "g", class_="legend")
    entries = [
        ("canary", COLORS["canary"], "line"),
        ("stable", COLORS["stable"], "line"),
        ("threshold", COLORS["threshold"], "dash"),
        ("failed interval", BANDS["fail"], "band"),
        ("insufficient", BANDS["insufficient"], "band"),
    ]
    for i, (label, color, shape) in enumerate(entries):
        left = x + i * 120
        if shape == "band":
            _sub(
                legend,
                "rect",
                x=f"{left:.1f}",
                y=f"{y - 9:.1f}",
                width="18",
                height="10",
                fill=color,
                fill_opacity="0.35",
            )
        else:
            _sub(
                legend,
                "line",
                x1=f"{left:.1f}",
                x2=f"{left + 18:.1f}",
                y1=f"{y - 4:.1f}",
                y2=f"{y - 4:.1f}",
                stroke=color,
                stroke_width="2",
                **({"stroke_dasharray": "6 4"} if shape == "dash" else {}),
            )
        _sub(legend, "text", label, x=f"{left + 24:.1f}", y=f"{y:.1f}")


def write_plot(
    path: Path, samples: Sequence[Sample], verdicts: Sequence[CanaryVerdict], title: str
) -> Path:
    """Write the SVG plot to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(samples, verdicts, title) + "\n", encoding="utf-8")
    return path

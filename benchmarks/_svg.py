"""A small SVG line chart of small multiples, written without a plotting library (the
benchmarks need nothing beyond the test extra): one panel per (row, column), the same
series in each, shares from 0 to 1 on the y axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

PANEL_WIDTH, PANEL_HEIGHT = 230, 170
MARGIN_LEFT, MARGIN_TOP, GAP = 60, 70, 55
# Distinguishable for colour-blind readers (Okabe-Ito), each with its own dash pattern.
STYLES = (
    ("#0072B2", ""),
    ("#E69F00", "6 3"),
    ("#009E73", "2 3"),
    ("#CC79A7", "8 3 2 3"),
    ("#D55E00", "4 2"),
)


Point = tuple[float, float]


@dataclass(frozen=True)
class Panel:
    title: str
    x: Sequence[float]  # in the unit of the x labels
    series: Mapping[str, Sequence[float | None]]  # name -> y in 0..1 per x (None: no point)


def _polyline(points: list[tuple[float, float]], colour: str, dash: str) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    circles = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points
    )
    line = f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"{dashes}/>'
    return line + circles


def write_panels(
    path: Path,
    title: str,
    rows: Sequence[Sequence[Panel]],
    x_label: str,
    y_label: str,
) -> Path:
    """Write the chart to ``path`` (SVG) and return it."""
    columns = max(len(row) for row in rows)
    names = list(dict.fromkeys(name for row in rows for panel in row for name in panel.series))
    width = MARGIN_LEFT + columns * (PANEL_WIDTH + GAP)
    height = MARGIN_TOP + len(rows) * (PANEL_HEIGHT + GAP + 20) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN_LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, name in enumerate(names):  # the legend
        colour, dash = STYLES[i % len(STYLES)]
        x0 = MARGIN_LEFT + i * 170
        out.append(_polyline([(x0, 40.0), (x0 + 30, 40.0)], colour, dash))
        out.append(f'<text x="{x0 + 36}" y="44">{escape(name)}</text>')
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            left = MARGIN_LEFT + c * (PANEL_WIDTH + GAP)
            top = MARGIN_TOP + r * (PANEL_HEIGHT + GAP + 20)
            bottom = top + PANEL_HEIGHT
            low, span = min(panel.x), (max(panel.x) - min(panel.x)) or 1.0

            def at(
                x: float, y: float, frame: tuple[float, ...] = (left, bottom, low, span)
            ) -> Point:
                left_, bottom_, low_, span_ = frame
                return (left_ + (x - low_) / span_ * PANEL_WIDTH, bottom_ - y * PANEL_HEIGHT)

            out.append(
                f'<text x="{left}" y="{top - 6}" font-weight="bold">{escape(panel.title)}</text>'
            )
            out.append(
                f'<rect x="{left}" y="{top}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" '
                'fill="none" stroke="#999"/>'
            )
            for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
                _, y = at(low, tick)
                out.append(
                    f'<line x1="{left}" y1="{y:.1f}" x2="{left + PANEL_WIDTH}" y2="{y:.1f}" '
                    'stroke="#eee"/>'
                )
                out.append(
                    f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
                )
            for x in panel.x:
                px, _ = at(x, 0.0)
                out.append(
                    f'<text x="{px:.1f}" y="{bottom + 14}" text-anchor="middle">{x:g}</text>'
                )
            for i, name in enumerate(names):
                values = panel.series.get(name, ())
                points = [at(x, y) for x, y in zip(panel.x, values, strict=False) if y is not None]
                if points:
                    colour, dash = STYLES[i % len(STYLES)]
                    out.append(_polyline(points, colour, dash))
            out.append(
                f'<text x="{left + PANEL_WIDTH / 2}" y="{bottom + 28}" '
                f'text-anchor="middle">{escape(x_label)}</text>'
            )
        y_mid = MARGIN_TOP + r * (PANEL_HEIGHT + GAP + 20) + PANEL_HEIGHT / 2
        out.append(
            f'<text x="14" y="{y_mid:.1f}" transform="rotate(-90 14 {y_mid:.1f})" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path

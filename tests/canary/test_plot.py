"""The SVG plot (parsed back as XML) and the Markdown step summary."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_release.canary.judge import CanaryVerdict, ComparisonConfig, Judge, JudgeConfig
from pytest_release.canary.plot import render_svg, write_plot
from pytest_release.canary.samples import Sample
from pytest_release.canary.summary import markdown_summary
from tests.canary.judge_support import T0, healthy_interval, probes, status, traffic

NS = {"svg": "http://www.w3.org/2000/svg"}


def hold() -> tuple[list[Sample], list[CanaryVerdict]]:
    """Four 60 s intervals: pass, insufficient (little canary traffic, and no status report
    of the canary: the error rate is judged on the hold so far, the restarts check has
    nothing), fail (10 % errors and slow), pass-by-thresholds."""
    judge = Judge(JudgeConfig(comparison=ComparisonConfig(enabled=False)), planned_looks=4)
    history: list[Sample] = []
    judged: list[Sample] = []
    verdicts: list[CanaryVerdict] = []
    for k in range(4):
        start = T0 + 60 * k
        if k == 1:
            current = [
                *traffic(start, start + 60, "canary", per_second=0.2),
                *traffic(start, start + 60, "stable", per_second=6.0),
                *probes(start, start + 60),
            ]
        elif k == 2:
            current = [
                *traffic(
                    start,
                    start + 60,
                    "canary",
                    fail=lambda i: i % 10 == 0,
                    latency=lambda i: 300.0 + 3 * i,
                ),
                *traffic(start, start + 60, "stable", per_second=6.0),
                *probes(start, start + 60),
            ]
        else:
            current = healthy_interval(start, start + 60)
        verdicts.append(
            judge.judge_interval(
                current, [status(start)] if k != 1 else [], start, start + 60, history=judged
            )
        )
        history.extend(current)
        if k != 2:  # the gate stops after a failure; the judge's history leaves the failing
            judged.extend(current)  # interval out so that a pass can follow for the plot
    assert [v.verdict for v in verdicts] == ["pass", "insufficient", "fail", "pass"]
    return history, verdicts


def parse(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()  # raises on invalid XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def test_plot_is_valid_svg_with_both_series_thresholds_and_marked_intervals(
    tmp_path: Path,
) -> None:
    samples, verdicts = hold()
    path = write_plot(tmp_path / "reports" / "canary-1.svg", samples, verdicts, "canary-1 <abc>")
    assert path == tmp_path / "reports" / "canary-1.svg"
    root = parse(path)
    assert root.findtext("svg:title", namespaces=NS) == "canary-1 <abc>"  # escaped, parsed back

    panels = root.findall("svg:g[@data-metric]", NS)
    assert [p.get("data-metric") for p in panels] == ["error_rate", "p95_latency"]
    for panel in panels:
        series = {g.get("data-series"): g for g in panel.findall("svg:g[@data-series]", NS)}
        assert set(series) == {"canary", "stable"}
        for group in series.values():
            assert group.find("svg:polyline", NS) is not None
            # One point per interval with data: all four have canary and stable traffic.
            assert [c.get("data-interval") for c in group.findall("svg:circle", NS)] == [
                "1",
                "2",
                "3",
                "4",
            ]
    error_panel, latency_panel = panels
    [error_threshold] = error_panel.findall("svg:line[@class='threshold']", NS)
    assert error_threshold.get("data-value") == "1"  # percent
    [latency_threshold] = latency_panel.findall("svg:line[@class='threshold']", NS)
    assert latency_threshold.get("data-value") == "500"

    canary_errors = [
        float(c.get("data-value", "nan"))
        for c in error_panel.findall("svg:g[@data-series='canary']/svg:circle", NS)
    ]
    assert canary_errors == [0.0, 0.0, 10.0, 0.0]
    # The failing interval is shaded and explained; the insufficient one marked apart.
    [failed] = error_panel.findall("svg:rect[@class='interval fail']", NS)
    assert failed.get("data-interval") == "3"
    assert "canary error rate 10.0% > 1.0%" in (failed.findtext("svg:title", namespaces=NS) or "")
    [lacking] = error_panel.findall("svg:rect[@class='interval insufficient']", NS)
    assert lacking.get("data-interval") == "2"
    # The failing point sits above the threshold line (SVG y grows downwards).
    failing_dot = error_panel.find(
        "svg:g[@data-series='canary']/svg:circle[@data-interval='3']", NS
    )
    assert failing_dot is not None
    assert float(failing_dot.get("cy", "0")) < float(error_threshold.get("y1", "0"))


def test_intervals_without_data_break_the_line(tmp_path: Path) -> None:
    samples, verdicts = hold()
    # Drop every canary sample of interval 2: the canary series has a gap there.
    gap = [
        s
        for s in samples
        if not (s.target == "canary" and T0 + 60 <= s.timestamp < T0 + 120 and s.kind == "http")
    ]
    root = ET.fromstring(render_svg(gap, verdicts, "gap"))
    error_panel = root.find("svg:g[@data-metric='error_rate']", NS)
    assert error_panel is not None
    canary = error_panel.find("svg:g[@data-series='canary']", NS)
    assert canary is not None
    assert [c.get("data-interval") for c in canary.findall("svg:circle", NS)] == ["1", "3", "4"]
    # Points 3-4 form a line; point 1 stands alone (no line through the gap).
    [line] = canary.findall("svg:polyline", NS)
    assert len((line.get("points") or "").split()) == 2


def test_empty_hold_still_renders(tmp_path: Path) -> None:
    root = parse(write_plot(tmp_path / "empty.svg", [], [], "canary-1"))
    assert root.findtext("svg:text[@class='empty']", namespaces=NS) == "no interval was judged"
    assert root.findall("svg:g[@data-series]", NS) == []


def test_markdown_summary_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_release.canary import summary
    from pytest_release.report import github

    assert summary.REPORTS_ARTIFACT_ENV == github.REPORTS_ARTIFACT_ENV
    monkeypatch.delenv("PYTEST_RELEASE_REPORTS_ARTIFACT", raising=False)
    samples, verdicts = hold()
    stage = Judge(JudgeConfig()).judge_stage(verdicts)
    text = markdown_summary(
        verdicts, samples, svg_path="reports/canary-1.svg", title="canary-1", stage_verdict=stage
    )
    lines = text.splitlines()
    assert lines[0] == "### canary-1"
    assert "**Stage verdict: ❌ fail**" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("| # |"))
    rows = lines[header + 2 : header + 6]
    assert rows[0] == (
        "| 1 | 12:00:00-12:01:00 UTC | ✅ pass | 120 | 0.0% | 26 ms | 360 | 0.0% | 26 ms |  |"
    )
    assert rows[1].startswith("| 2 | 12:01:00-12:02:00 UTC | ⚠️ insufficient | 12 |")
    assert rows[1].endswith("| restarts (insufficient) |")
    assert rows[2].startswith("| 3 | 12:02:00-12:03:00 UTC | ❌ fail | 120 | 10.0% |")
    assert "error_rate 10.0% (limit 1.0%), p95_latency 639 ms (limit 500 ms) |" in rows[2]
    assert any(
        line.startswith("  - canary error rate 10.0% > 1.0%: the lower ")
        and "over 12:02:00-12:03:00 UTC (in the interval) (n=120, 12 errors;" in line
        for line in lines
    )
    # Failed /health probes per replica: count, share and the longest run.
    assert "| canary-0 | canary | 48 | 0 | 0.0% | 0 |" in lines
    # The SVG is named where it is (no link: a runner path or a zipped artifact 404s).
    assert lines[-1] == (
        "Plot of error rate and p95 latency per interval (SVG): "
        "`reports/canary-1.svg` on the runner."
    )
    monkeypatch.setenv("PYTEST_RELEASE_REPORTS_ARTIFACT", "reports-canary-1")  # the action
    in_artifact = markdown_summary(verdicts, samples, svg_path="reports/canary-1.svg")
    assert in_artifact.splitlines()[-1].endswith(
        "`reports/canary-1.svg` in the artifact `reports-canary-1`."
    )
    assert "](" not in in_artifact


def test_markdown_summary_without_intervals_and_pipe_escaping() -> None:
    assert "_No interval was judged._" in markdown_summary([], [])
    samples, verdicts = hold()
    [failing] = [v for v in verdicts if v.verdict == "fail"]
    check = failing.failed_checks[0]
    weird = CanaryVerdict(
        verdict="fail",
        checks=(dataclasses.replace(check, name="a|b"),),
        window_start=failing.window_start,
        window_end=failing.window_end,
    )
    text = markdown_summary([weird], samples)
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert "a\\|b 10.0%" in row


@pytest.mark.parametrize("count", [1, 30])
def test_many_or_single_intervals_render(tmp_path: Path, count: int) -> None:
    judge = Judge(JudgeConfig(comparison=ComparisonConfig(enabled=False)), planned_looks=count)
    samples: list[Sample] = []
    verdicts = []
    for k in range(count):
        current = healthy_interval(T0 + 10 * k, T0 + 10 * (k + 1))
        verdicts.append(judge.judge_interval(current, [status(T0)], T0 + 10 * k, T0 + 10 * (k + 1)))
        samples.extend(current)
    root = parse(write_plot(tmp_path / "p.svg", samples, verdicts, "many"))
    dots = root.findall(
        "svg:g[@data-metric='p95_latency']/svg:g[@data-series='canary']/svg:circle", NS
    )
    assert len(dots) == count


def test_markdown_summary_embeds_mermaid_charts_of_canary_and_stable() -> None:
    samples, verdicts = hold()
    text = markdown_summary(verdicts, samples)
    blocks = text.split("```mermaid\n")[1:]
    assert len(blocks) == 2
    error_chart, latency_chart = (b.split("```", 1)[0].splitlines() for b in blocks)
    assert error_chart[0] == "xychart-beta"
    assert 'x-axis "interval" ["1", "2", "3", "4"]' in error_chart[2]
    canary_line, stable_line = (ln.strip() for ln in error_chart if ln.strip().startswith("line"))
    assert canary_line == "line [0.00, 0.00, 10.00, 0.00]"  # interval 3 failed: 10 % errors
    assert stable_line == "line [0.00, 0.00, 0.00, 0.00]"
    assert 'y-axis "ms"' in latency_chart[3]
    assert "markdown" not in markdown_summary([], [])  # no chart without intervals

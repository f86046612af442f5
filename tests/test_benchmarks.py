"""The benchmark scripts run (``--quick``: tiny input, one repetition) and write well-formed
output; their pure helpers compute what they claim.  No timing is asserted here: speed is
what the scripts measure, not what the tests check."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
FIGURES = ("overhead", "scheduling", "tool_gates", "canary_judge", "rollback", "canary_power")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a benchmark module by name (the scripts import each other by bare name)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    return load


def _run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_output(out: Path, figure: str) -> dict[str, Any]:
    path = out / "benchmarks" / f"{figure}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "pytest-release-benchmark-1"
    assert data["figure"] == figure
    assert data["quick"] is True
    assert data["command"].startswith(f"python benchmarks/{figure}.py --quick")
    assert "--out" not in data["command"]
    machine = data["machine"]
    assert machine["nproc"] >= 1
    assert machine["cpu_model"]
    assert len(machine["load_average_start"]) == 3
    assert data["date"].endswith("UTC")
    assert data["summary"], "a figure states its headline numbers"
    assert data["tables"]
    for table in data["tables"]:
        assert table["rows"], table["title"]
        assert all(len(row) == len(table["columns"]) for row in table["rows"]), table["title"]
    markdown = (out / "benchmarks.md").read_text(encoding="utf-8")
    assert f"## {data['title']}" in markdown
    assert f"`{data['command']}`" in markdown
    assert "Quick run" in markdown
    for other in FIGURES:
        if other != figure:
            assert f"run `python benchmarks/{other}.py`" in markdown
    return data


# -- the scripts ---------------------------------------------------------------------------------
def test_overhead_quick(tmp_path: Path) -> None:
    done = _run("overhead", "--quick", "--out", str(tmp_path), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    data = _check_output(tmp_path, "overhead")
    goals, variants_table = data["tables"][:2]
    variants = [row[0] for row in variants_table["rows"]]
    assert variants == ["plain", "plain-junit", "inert", "stage"]
    # The goal table comes first, one row a goal figure; what --quick does not measure
    # (the real suite, -n 2, instructions) is said so, never counted as met.
    assert goals["columns"] == ["what", "measured", "goal", "met"]
    met = {row[0]: row[3] for row in goals["rows"]}
    assert met["20 trivial tests, serial: wall"] in ("yes", "no")
    assert met["20 trivial tests, -n 2: wall"] == "not measured in this run"
    assert met["packaging==26.4, 4 test modules, serial: instructions"] == (
        "not measured in this run"
    )
    assert met["20 trivial tests, serial: instructions"] == "not measured in this run"
    assert met["peak RSS, whole packaging==26.4 suite, -n 2: controller"] == (
        "not measured in this run"
    )
    for part in ("wall", "CPU", "peak RSS"):
        start_up = (
            f"start-up of a one-test stage (configuration unchanged: plan cache): extra {part}"
        )
        assert met[start_up] in ("yes", "no")
    assert data["summary"][0].startswith("goals met: ")
    raw = data["raw"]
    assert [g["what"] for g in raw["goals"]] == list(met)
    # The small serial projects: one test (start-up) and the 1,000-test one (10 quick).
    assert met["10 trivial tests, serial: wall"] in ("yes", "no")
    assert set(raw["small"]) == {"one", "thousand"}
    assert all(len(raw["small"]["one"][mode]) == 1 for mode in ("plain", "stage"))
    assert "whole_suite" not in raw
    assert all(t > 0 for t in raw["wall_times_s"]["stage"])
    assert raw["import_plugin_s"][0] > 0
    # The stage run imports the gate modules that plain pytest never imports.
    assert raw["import_extra_stage_s"][0] > raw["import_extra_inert_s"][0]
    # The profile names the plugin's own functions and the stage's configuration import.
    profile = raw["profile"]["this tree"]
    assert 0 < profile["plugin_self_s"] < profile["total_s"]
    functions = [row[0] for row in profile["top"]]
    assert any(name.startswith("plugin:") and "pytest_configure" in name for name in functions)
    # The measured stage runs read the plan an earlier run validated: no pydantic.
    assert raw["import_families_s"]
    assert "pydantic" not in raw["import_families_s"]
    assert len(raw["small"]["one"]["stage, validating"]) == 1


def test_overhead_memory_only_quick(tmp_path: Path) -> None:
    done = _run("overhead", "--quick", "--memory-only", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    figures = tmp_path / "benchmarks"
    assert sorted(p.name for p in figures.iterdir()) == ["overhead_memory.json"]
    data = json.loads((figures / "overhead_memory.json").read_text(encoding="utf-8"))
    assert data["command"] == "python benchmarks/overhead.py --quick --memory-only"
    peak, slope = data["tables"]
    assert [row[0] for row in peak["rows"]] == ["20", "200"]
    assert [row[:2] for row in slope["rows"]] == [["20", "200"]]
    rss = data["raw"]["memory_rss_mib"]
    assert set(rss) == {"20 plain", "20 stage", "200 plain", "200 stage"}
    assert all(v > 0 for values in rss.values() for v in values)
    assert data["summary"][0].startswith("peak RSS slope from 20 to 200 trivial tests: serial")
    markdown = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "## 1b. Peak memory in the number of tests" in markdown
    assert "Not measured yet: run `python benchmarks/overhead.py`." in markdown


def test_memory_slope_is_growth_per_test_added(bench: Callable[[str], ModuleType]) -> None:
    slope = bench("_memory_slope")
    medians = {(1000, "plain"): 50.0, (3000, "plain"): 54.0}
    medians |= {(1000, "stage"): 55.0, (3000, "stage"): 59.5}
    per = slope.per_test_kib(medians, 1000, 3000)
    assert per == {
        "plain": pytest.approx(4 * 1024 / 2000),
        "stage": pytest.approx(4.5 * 1024 / 2000),
    }


def test_scheduling_quick(tmp_path: Path) -> None:
    done = _run("scheduling", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    data = _check_output(tmp_path, "scheduling")
    raw = data["raw"]
    assert set(raw["wall_times_s"]) == {"stage -n 2", "plain -n 2"}
    assert raw["bound_s"] == pytest.approx(0.65)


def test_tool_gates_quick(tmp_path: Path) -> None:
    done = _run("tool_gates", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    data = _check_output(tmp_path, "tool_gates")
    raw = data["raw"]
    assert set(raw["lint_s"]) == {
        f"{who}, {state}"
        for who in ("bare sequential", "bare concurrent", "lint gate")
        for state in ("cold", "warm")
    } | {"pytest start-up alone"}
    assert set(raw["newman_s"]) == {"bare newman run", "newman gate", "pytest start-up alone"}


def test_canary_judge_quick_records_real_samples_and_replays(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = _run("canary_judge", "--quick", "--out", str(tmp_path), "--data", str(data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    data = _check_output(tmp_path, "canary_judge")
    for scenario in ("good", "errors-5"):
        recording = json.loads((data_dir / f"{scenario}.json").read_text(encoding="utf-8"))
        assert recording["format"] == "pytest-release-canary-samples-1"
        targets = {row[1] for row in recording["samples"]}
        assert targets == {0, 1, 2}, "stable, canary and router samples were recorded"
        assert recording["statuses"], "platform status was recorded"
    bad = json.loads((data_dir / "errors-5.json").read_text(encoding="utf-8"))
    canary_errors = [row for row in bad["samples"] if row[1] == 1 and row[2] == 0 and not row[3]]
    assert canary_errors, "the 5 % canary answered errors for real"
    detections = data["raw"]["detections"]
    assert len(detections["good"]["ours"]) == 6
    assert len(detections["errors-5"]["ours"]) == 3


def test_canary_judge_replays_the_committed_recordings(tmp_path: Path) -> None:
    data_dir = BENCHMARKS / "data" / "canary"
    if not (data_dir / "good.json").exists():
        pytest.fail(f"{data_dir} holds no recordings: run python benchmarks/canary_judge.py")
    done = _run("canary_judge", "--quick", "--replay-only", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    _check_output(tmp_path, "canary_judge")


def test_canary_power_quick(tmp_path: Path) -> None:
    """The power table runs, and its decision rule is the real Judge's (the script replays
    simulated holds through the Judge and exits non-zero on any difference)."""
    done = _run("canary_power", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    data = _check_output(tmp_path, "canary_power")
    assert any("real Judge" in note for note in data["notes"])


def test_rollback_quick(tmp_path: Path) -> None:
    done = _run("rollback", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    data = _check_output(tmp_path, "rollback")
    (only,) = data["raw"]["rounds"]
    assert only["to_traffic"] > 0
    assert only["to_removed"] >= only["to_traffic"]
    assert only["rollback"][0] > 0, "the load kept sending requests during the rollback"
    assert only["switch"][0] > 0, "the load kept sending requests during the blue/green switch"
    assert only["switch"][1] == 0, only
    assert only["switch_back"][1] == 0, only


def test_bad_arguments_are_reported(tmp_path: Path) -> None:
    done = _run("overhead", "--reps", "0", "--out", str(tmp_path))
    assert done.returncode != 0
    assert "--reps must be at least 1, got 0" in done.stderr
    done = _run("overhead", "--whole-reps", "0", "--out", str(tmp_path))
    assert done.returncode != 0
    assert "--whole-reps must be at least 1, got 0" in done.stderr
    done = _run("overhead", "--instructions=some", "--out", str(tmp_path))
    assert done.returncode != 0
    assert "invalid choice: 'some'" in done.stderr


def test_goal_table(bench: Callable[[str], ModuleType]) -> None:
    common, goals = bench("_common"), bench("_goals")
    figure = common.Figure("overhead", "python benchmarks/overhead.py", False)
    figure.table("Another table", ["a"])
    figure.summary.append("headline")
    rows = [
        goals.ratio_goal("fast", 1.04, 1.05, "n 3"),
        goals.ratio_goal("slow", 1.06, 1.05),
        goals.ratio_goal("absent", None, 1.05),
    ]
    goals.goal_table(figure, rows)
    table = figure.tables[0]
    assert table.rows == [
        ["fast", "1.040x (n 3)", "<= 1.05x", "yes"],
        ["slow", "1.060x", "<= 1.05x", "no"],
        ["absent", "-", "<= 1.05x", "not measured in this run"],
    ]
    assert figure.summary == ["goals met: 1 of 2 measured; not met: slow", "headline"]
    assert [g["met"] for g in figure.raw["goals"]] == [True, False, None]


def test_split_run_tells_the_controller_from_its_workers(
    bench: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    overhead = bench("overhead")
    overhead.make_project(tmp_path, 4, per_file=2)
    flags = ["-q", "-p", "no:cacheprovider", "-p", "no:release"]
    assert overhead.collected(flags, tmp_path, None) == 4
    serial = overhead.split_run(flags, tmp_path)
    assert serial.controller > 0
    assert serial.workers == 0  # no child process
    xdist = overhead.split_run([*flags, "-n", "2"], tmp_path)
    assert xdist.controller > 0
    assert xdist.workers > 0  # the workers were waited for: their peak RSS is seen
    assert xdist.usage.rss >= max(xdist.controller, xdist.workers) - 1


# -- helpers -------------------------------------------------------------------------------------
def test_statistics(bench: Callable[[str], ModuleType]) -> None:
    common = bench("_common")
    s = common.summarize([float(v) for v in range(1, 11)])
    assert (s.n, s.median, s.minimum, s.maximum) == (10, 5.5, 1.0, 10.0)
    assert s.p10 == pytest.approx(1.9)
    assert s.p90 == pytest.approx(9.1)
    assert common.paired_ratios([2.0, 6.0], [1.0, 2.0]) == [2.0, 3.0]
    with pytest.raises(ValueError, match="2 measurements but 1 baseline"):
        common.paired_ratios([1.0, 2.0], [1.0])


def test_markdown_lists_every_figure(bench: Callable[[str], ModuleType], tmp_path: Path) -> None:
    common = bench("_common")
    figure = common.Figure("rollback", "python benchmarks/rollback.py", False)
    figure.summary.append("headline")
    table = figure.table("A table", ["a", "b"])
    table.rows.append(["1", "x|y"])
    figure.write(tmp_path)
    text = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "## 5. Rollback" in text
    assert "| 1 | x\\|y |" in text  # cells are escaped
    assert "Not measured yet: run `python benchmarks/overhead.py`" in text
    assert "Quick run" not in text
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        common.Figure("nope", "x", False)


def test_importtime_parsing(bench: Callable[[str], ModuleType]) -> None:
    overhead = bench("overhead")
    rows = overhead.parse_importtime(
        "import time: self [us] | cumulative | imported package\n"
        "import time:       181 |        181 |   pytest_release\n"
        "import time:      1354 |       5010 | pytest_release.plugin\n"
    )
    assert rows == [("pytest_release", 181, 181, 1), ("pytest_release.plugin", 1354, 5010, 0)]


def test_instruction_counts_include_child_processes(
    bench: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    """``--instructions`` counts every process (xdist workers are children): a process
    that runs the same work in a child costs at least that work more."""
    import shutil

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (scripts/install-system-deps.sh installs it)")
    overhead = bench("overhead")
    work = "sum(i * i for i in range(300_000))"
    alone = overhead.python_instructions(work, tmp_path)
    with_child = overhead.python_instructions(
        f"import subprocess, sys\n{work}\n"
        f"subprocess.run([sys.executable, '-c', {work!r}], check=True)",
        tmp_path,
    )
    startup = overhead.python_instructions("pass", tmp_path)
    assert startup < alone
    # The child repeats the work (and a start-up): counted, not only the parent.
    assert with_child > 2 * alone - startup
    # Repeatable: the same run counts the same instructions within 0.5 %.
    assert abs(overhead.python_instructions(work, tmp_path) - alone) < 0.005 * alone


def test_scheduling_bound(bench: Callable[[str], ModuleType]) -> None:
    scheduling = bench("scheduling")
    assert scheduling.total_work(scheduling.DAG) == pytest.approx(13.0)
    # lint (1.0) -> docker (3.0) -> e2e (0.5)
    assert scheduling.critical_path(scheduling.DAG) == pytest.approx(4.5)


def test_scheduling_reads_the_items_own_times(
    bench: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    scheduling = bench("scheduling")
    dag = (
        scheduling.GateSpec("a", "sleep", 2, 1.0, ()),
        scheduling.GateSpec("b", "sleep", 1, 1.0, ("a",)),
    )
    log = tmp_path / "work.log"
    log.write_text("a 100.0 101.5\na 100.2 101.0\nb 101.6 103.6\n", encoding="utf-8")
    items = scheduling.read_log(log, dag)
    assert items.span == pytest.approx(3.6)
    assert items.work == pytest.approx(4.3)
    assert items.critical_path == pytest.approx(3.5)  # longest a (1.5) + b (2.0)
    assert items.bound == pytest.approx(3.5)
    log.write_text("a 100.0 101.5\n", encoding="utf-8")
    with pytest.raises(scheduling.BenchmarkError, match="1 items logged, expected 3"):
        scheduling.read_log(log, dag)


def test_bootstrap_rebases_restarts_and_flagger_counts_failed_checks(
    bench: Callable[[str], ModuleType],
) -> None:
    judge = bench("canary_judge")
    from pytest_release.canary.samples import ReplicaStatus, Sample

    samples = [
        Sample(timestamp=t / 10, target="canary", kind="http", ok=True, latency_ms=5.0)
        for t in range(100)
    ]
    # The canary restarted at 2.5 s and 7.5 s.
    statuses = [
        ReplicaStatus(t / 2, "canary-0", "canary", "", True, True, (t >= 5) + (t >= 15), "c")
        for t in range(20)
    ]
    times: dict[str, tuple[list[float], list[int]]] = {}
    for st in statuses:
        times.setdefault(st.name, ([], []))[0].append(st.timestamp)
        times[st.name][1].append(st.restarts)
    rec = judge.Recording(
        scenario="x",
        duration=10.0,
        samples=tuple(samples),
        statuses=tuple(statuses),
        meta={},
        sample_times=tuple(s.timestamp for s in samples),
        restarts={k: (tuple(v[0]), tuple(v[1])) for k, v in times.items()},
    )
    # 0-2 s (no restart) then 7-9 s (one restart at 7.5 s): the run sees exactly one.
    run = judge.compose(rec, [(0.0, 2.0), (7.0, 2.0)])
    assert len(run.samples) == 40
    assert run.samples[20].timestamp == pytest.approx(judge.BASE + 2.0)
    assert max(st.restarts for st in run.statuses) == 1
    assert [st.restarts for st in run.statuses][:4] == [0, 0, 0, 0]
    # Flagger-style: roll back after N failed checks, counted over the whole analysis.
    checks = [{500.0: failed} for failed in (True, False, True, True)]
    assert judge.flagger_detection(checks, 1, 500.0, 5.0) == 5.0
    assert judge.flagger_detection(checks, 2, 500.0, 5.0) == 15.0
    assert judge.flagger_detection(checks, 4, 500.0, 5.0) is None


def test_committed_recordings_replay_through_the_judge_as_regressions(
    bench: Callable[[str], ModuleType],
) -> None:
    """Real samples (real processes through HAProxy, benchmarks/data/canary; errors drawn at
    random, 0.5 % background errors on both versions) replayed in time order through the
    real Judge: the A/A recording passes every run, the clear faults are rolled back, the
    crash loop and +300 ms in the first interval (no timing asserted: intervals)."""
    judge = bench("canary_judge")
    settings = judge.FULL
    config = settings.judge_config()
    outcomes: dict[str, list[Any]] = {}
    for name in ("good", "errors-5", "latency-300", "crash-loop"):
        rec = judge.load_recording(judge.DATA_DIR / f"{name}.json")
        assert rec.meta["stable_env"]["FAULT_BACKGROUND_ERROR_RATE"] == "0.005"
        assert rec.meta["canary_env"]["FAULT_ERROR_DRAWS"] == "random"
        outcomes[name] = [
            judge.judge_run(run, settings, config) for run in judge.live_runs(rec, settings)
        ]
    verdicts = {name: [o.verdict for o in found] for name, found in outcomes.items()}
    assert verdicts["good"]
    assert set(verdicts["good"]) == {"pass"}, verdicts["good"]
    for name in ("errors-5", "latency-300", "crash-loop"):
        assert verdicts[name]
        assert set(verdicts[name]) == {"fail"}, (name, verdicts[name])
    for name, check in (("latency-300", "compare_latency"), ("crash-loop", "restarts")):
        first = outcomes[name][0]
        assert first.detection == settings.interval, (name, first)
        assert check in first.checks, (name, first)


def test_two_percent_errors_at_a_twelfth_of_the_demo_data_are_seen_but_rarely_proven(
    bench: Callable[[str], ModuleType],
) -> None:
    """errors-2 (2 % of the canary's requests fail, stable 0.5 %) with 50 canary requests an
    interval, 1/12 of the demo profile's: the judge sees the excess (strong nominal
    evidence at the end of the live hold, within a factor of about 12 of its corrected
    alpha) and rolls back some of the bootstrap runs; it must not see less."""
    import random
    from bisect import bisect_left

    judge = bench("canary_judge")
    settings = judge.FULL
    config = settings.judge_config()
    rec = judge.load_recording(judge.DATA_DIR / "errors-2.json")
    run = judge.live_runs(rec, settings)[0]
    the_judge = judge.Judge(config, planned_looks=settings.looks)
    for k in range(settings.looks):
        start = judge.BASE + k * settings.interval
        end = start + settings.interval
        history = run.samples[: bisect_left(run.times, end)]
        verdict = the_judge.judge_interval(
            judge.window(run, start, end), [], start, end, history, look=k + 1
        )
    compare = verdict.check("compare_error_rate")
    assert compare is not None
    assert compare.value is not None
    assert compare.value < 0.005, compare.message
    boot = judge.bootstrap_runs(rec, settings, 50, random.Random(20261202))
    detected = sum(1 for r in boot if judge.judge_run(r, settings, config).verdict != "pass")
    assert detected >= 10, f"{detected}/50 bootstrap runs of errors-2 rolled back"


def test_synthetic_holds_feed_the_real_judge_and_the_reference_rules(
    bench: Callable[[str], ModuleType],
) -> None:
    judge = bench("canary_judge")
    task = judge.StudyTask("errors+4.5%", 0.005, "demo", 10.0, seed=7, looks=3)
    outcome = judge.run_study_task(task)
    assert outcome.ours_look is not None, "5 % errors at the demo rate are rolled back"
    assert "error_rate" in outcome.ours_checks or "compare_error_rate" in outcome.ours_checks
    assert len(outcome.intervals) == 3
    errors, requests, _p99, _p_latency, _p_errors = outcome.intervals[0]
    assert 450 < requests < 750, "Poisson arrivals at 10 req/s over 60 s"
    assert 0 < errors < requests
    assert judge.flagger_look(outcome, 1, 1e9) == 1  # > 1 % errors in the first interval
    assert judge.kayenta_look(outcome, 1e-300) is None
    aa = judge.run_study_task(judge.StudyTask("A/A", 0.005, "demo", 10.0, seed=8, looks=3))
    assert aa.ours_look is None
    assert aa.ours_verdict == "pass"

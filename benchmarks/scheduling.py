"""Figure 2: gate scheduling of a synthetic DAG stage under ``-n 2``.

A generated project has gates of known work (``sleep`` items and CPU busy-loop items of
fixed CPU seconds) joined by ``after`` into a DAG.  Measured, interleaved per round:

* ``stage -n 2``: ``pytest --stage=dag -n 2`` (gates in DAG order, items spread over 2 workers);
* ``plain -n 2``: ``pytest -p no:release -n 2`` on the same items (no ordering at all);
* ``stage serial``: ``pytest --stage=dag`` (one process: about the total work).

Every item logs when its work started and ended, so a run's item span (first start to last
end) excludes start-up, collection and reports, which show as wall time minus span.  The
bound is the classic lower bound of any schedule on P=2 workers, max(critical path, total
work / P), from the nominal work and, per run, from the item times measured in that run
(CPU items take longer on a loaded machine); the critical path runs through items (every
item of a gate waits for all items of the gates in its ``after``).

    python benchmarks/scheduling.py [--quick] [--reps N] [--out DIR]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import (
    PYTHON,
    BenchmarkError,
    Figure,
    command_line,
    fmt_ratio,
    fmt_seconds,
    fmt_spread,
    interleaved,
    out_dir,
    paired_ratios,
    parser,
    reps,
    summarize,
    timed_run,
)

WORKERS = 2


@dataclass(frozen=True)
class GateSpec:
    name: str
    kind: str  # "sleep" or "cpu"
    items: int
    seconds: float  # per item
    after: tuple[str, ...]

    @property
    def work(self) -> float:
        return self.items * self.seconds


# A stage shaped like a real pipeline: lint and unit first, a long docker build after lint,
# integration after unit, e2e after docker and integration, newman after docker.
DAG: tuple[GateSpec, ...] = (
    GateSpec("lint", "sleep", 2, 1.0, ()),
    GateSpec("unit", "cpu", 16, 0.125, ()),
    GateSpec("integration", "sleep", 6, 0.5, ("unit",)),
    GateSpec("docker", "sleep", 1, 3.0, ("lint",)),
    GateSpec("e2e", "sleep", 4, 0.5, ("docker", "integration")),
    GateSpec("newman", "sleep", 2, 0.5, ("docker",)),
)

CONFTEST = """
import os
import time

SCALE = float(os.environ.get("WORK_SCALE", "1"))
LOG = os.environ.get("WORK_LOG")


def work(gate, kind, seconds):
    seconds *= SCALE
    started = time.time()
    if kind == "sleep":
        time.sleep(seconds)
    else:
        # CPU work: busy until this thread has used `seconds` of CPU time.
        end = time.thread_time() + seconds
        x = 0
        while time.thread_time() < end:
            for i in range(2000):
                x += i * i
    if LOG:
        # One short O_APPEND write per item: atomic across the xdist workers.
        with open(LOG, "a") as log:
            log.write(f"{gate} {started!r} {time.time()!r}\\n")
"""

TEST = """
import pytest
from conftest import work


@pytest.mark.parametrize("i", range({items}))
def test_{name}(i):
    work("{name}", "{kind}", {seconds!r})
"""


def critical_path(dag: Sequence[GateSpec], scale: float = 1.0) -> float:
    finish: dict[str, float] = {}
    for gate in dag:  # listed in a topological order
        start = max((finish[d] for d in gate.after), default=0.0)
        finish[gate.name] = start + gate.seconds * scale
    return max(finish.values())


def total_work(dag: Sequence[GateSpec], scale: float = 1.0) -> float:
    return sum(g.work for g in dag) * scale


@dataclass(frozen=True)
class ItemLog:
    span: float  # first item start to last item end
    bound: float  # max(critical path, work / P) of the measured item times
    critical_path: float
    work: float


def read_log(path: Path, dag: Sequence[GateSpec]) -> ItemLog:
    """The items' own times from the run's work log (``gate start end`` per line)."""
    times: dict[str, list[float]] = {}
    starts, ends = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, start, end = line.split()
        times.setdefault(name, []).append(float(end) - float(start))
        starts.append(float(start))
        ends.append(float(end))
    expected = sum(g.items for g in dag)
    if len(starts) != expected:
        raise BenchmarkError(f"{path}: {len(starts)} items logged, expected {expected}")
    work = sum(sum(v) for v in times.values())
    finish: dict[str, float] = {}
    for gate in dag:
        begin = max((finish[d] for d in gate.after), default=0.0)
        finish[gate.name] = begin + max(times.get(gate.name) or [0.0])
    path_len = max(finish.values())
    return ItemLog(max(ends) - min(starts), max(path_len, work / WORKERS), path_len, work)


def make_project(root: Path, dag: Sequence[GateSpec]) -> None:
    lines = ["[tool.pytest.ini_options]", 'testpaths = ["tests"]', ""]
    for gate in dag:
        after = ", ".join(f'"{a}"' for a in gate.after)
        lines += [
            f"[tool.pytest-release.gates.{gate.name}]",
            'kind = "tests"  # plain test gates, whatever the built-in gate of that name is',
            f'paths = ["tests/{gate.name}/*"]',
            f"after = [{after}]",
            "",
        ]
        directory = root / "tests" / gate.name
        directory.mkdir(parents=True)
        (directory / f"test_{gate.name}.py").write_text(
            TEST.format(name=gate.name, kind=gate.kind, items=gate.items, seconds=gate.seconds),
            encoding="utf-8",
        )
    names = ", ".join(f'"{g.name}"' for g in dag)
    lines += ["[tool.pytest-release.stages.dag]", f"gates = [{names}]", ""]
    (root / "pyproject.toml").write_text("\n".join(lines), encoding="utf-8")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    out = out_dir(args)
    rounds = reps(args, full=5, quick=1)
    scale = 0.1 if args.quick else 1.0
    figure = Figure(
        "scheduling",
        command_line("scheduling.py", sys.argv[1:] if argv is None else argv),
        args.quick,
    )
    work_total = total_work(DAG, scale)
    path = critical_path(DAG, scale)
    bound = max(path, work_total / WORKERS)
    root = Path(tempfile.mkdtemp(prefix="pytest-release-bench-scheduling-"))
    try:
        make_project(root, DAG)
        base = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        stage = [*base, "--stage=dag", "--release-id=bench"]
        plain = [*base, "-p", "no:release"]
        log_path = root / "work.log"
        env = {**os.environ, "WORK_SCALE": str(scale), "WORK_LOG": str(log_path)}
        commands: dict[str, list[str]] = {
            "stage -n 2": [*stage, "-n", "2"],
            "plain -n 2": [*plain, "-n", "2"],
            "stage serial": stage,
        }
        if args.quick:  # seconds, not minutes: the two -n 2 runs once, no warm-up
            del commands["stage serial"]
        logs: dict[str, list[ItemLog]] = {name: [] for name in commands}

        def run(name: str, cmd: list[str]) -> float:
            log_path.unlink(missing_ok=True)
            wall = timed_run(cmd, root, env)
            logs[name].append(read_log(log_path, DAG))
            return wall

        variants: dict[str, Callable[[], float]] = {}
        for name, cmd in commands.items():
            if not args.quick:
                timed_run(cmd, root, {**env, "WORK_SCALE": "0"})  # warm-up; checks it passes
            variants[name] = lambda name=name, cmd=cmd: run(name, cmd)  # type: ignore[misc]
        print(f"scheduling: work {work_total:g}s, critical path {path:g}s, {rounds} rounds")
        times = interleaved(variants, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = figure.table(
        f"The DAG stage (total work {fmt_seconds(work_total)}, critical path "
        f"{fmt_seconds(path)}, bound max(critical path, work / {WORKERS}) = "
        f"{fmt_seconds(bound)}); span = first item start to last item end (logged by the "
        "items); the measured bound uses the item times of the same run",
        [
            "variant",
            "wall time",
            "item span",
            "span / bound",
            "span / measured bound",
            "wall - span (start-up, collection, reports)",
            "n",
        ],
    )
    for name, values in times.items():
        spans = [log.span for log in logs[name]]
        table.rows.append(
            [
                name,
                fmt_spread(summarize(values)),
                fmt_spread(summarize(spans)),
                fmt_ratio(summarize([v / bound for v in spans])),
                fmt_ratio(summarize([log.span / log.bound for log in logs[name]])),
                fmt_spread(summarize([w - v for w, v in zip(values, spans, strict=True)])),
                str(rounds),
            ]
        )

    vs_plain = summarize(paired_ratios(times["stage -n 2"], times["plain -n 2"]))
    span_vs_plain = summarize(
        paired_ratios(
            [log.span for log in logs["stage -n 2"]], [log.span for log in logs["plain -n 2"]]
        )
    )
    figure.summary += [
        f"stage -n 2 vs plain pytest -n 2 on the same items: {fmt_ratio(vs_plain)} wall time, "
        f"{fmt_ratio(span_vs_plain)} item span",
        f"stage -n 2 item span vs the bound {fmt_seconds(bound)}: "
        + fmt_ratio(summarize([log.span / bound for log in logs["stage -n 2"]]))
        + "; vs the bound from the run's measured item times: "
        + fmt_ratio(summarize([log.span / log.bound for log in logs["stage -n 2"]])),
    ]
    gates = figure.table("The synthetic stage", ["gate", "after", "items", "work per item", "kind"])
    for gate in DAG:
        gates.rows.append(
            [
                gate.name,
                ", ".join(gate.after) or "(none)",
                str(gate.items),
                fmt_seconds(gate.seconds * scale),
                "CPU busy loop" if gate.kind == "cpu" else "sleep",
            ]
        )
    if args.quick:
        figure.notes.append("--quick: only the two -n 2 variants, once, work scaled by 0.1.")
    figure.notes += [
        "`plain -n 2` ignores the gates (xdist's default scheduling, no DAG): it is not a "
        "valid release order, only the speed of the same items without ordering constraints.",
        f"Any greedy schedule finishes within total work / P + critical path = "
        f"{fmt_seconds(work_total / WORKERS + path)} (Graham's bound) plus fixed costs.",
        "CPU items busy-loop for fixed CPU seconds of their thread; on a loaded machine they "
        "take longer in wall time, which the nominal bound does not include.",
    ]
    figure.raw = {
        "wall_times_s": times,
        "bound_s": bound,
        "critical_path_s": path,
        "total_work_s": work_total,
        "workers": WORKERS,
        "scale": scale,
        "item_logs": {name: [log.__dict__ for log in values] for name, values in logs.items()},
    }
    figure.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

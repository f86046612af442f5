"""Figure 2: gate scheduling of a synthetic DAG stage under ``-n 2``.

A generated project has gates of known work (``sleep`` items and CPU busy-loop items of
fixed CPU seconds) joined by ``after`` into a DAG.  Measured, interleaved per round:

* ``stage -n 2``: ``pytest --stage=dag -n 2`` (gates in DAG order, items spread over 2 workers);
* ``plain -n 2``: ``pytest -p no:release -n 2`` on the same items (no ordering at all);
* ``stage serial``: ``pytest --stage=dag`` (one process: about the total work);
* the two ``-n 2`` runs again with zero work (``WORK_SCALE=0``): their fixed cost (startup,
  collection, worker spawn, reports).

The bound is the classic lower bound of any schedule on P=2 workers, max(critical path,
total work / P), computed from the nominal work; the critical path runs through items
(every item of a gate waits for all items of the gates in its ``after``).

    python benchmarks/scheduling.py [--quick] [--reps N] [--out DIR]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import (
    PYTHON,
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


def work(kind, seconds):
    seconds *= SCALE
    if kind == "sleep":
        time.sleep(seconds)
        return
    # CPU work: busy until this thread has used `seconds` of CPU time.
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x += i * i
"""

TEST = """
import pytest
from conftest import work


@pytest.mark.parametrize("i", range({items}))
def test_{name}(i):
    work("{kind}", {seconds!r})
"""


def critical_path(dag: Sequence[GateSpec], scale: float = 1.0) -> float:
    finish: dict[str, float] = {}
    for gate in dag:  # listed in a topological order
        start = max((finish[d] for d in gate.after), default=0.0)
        finish[gate.name] = start + gate.seconds * scale
    return max(finish.values())


def total_work(dag: Sequence[GateSpec], scale: float = 1.0) -> float:
    return sum(g.work for g in dag) * scale


def measured_bound(junit: Path, dag: Sequence[GateSpec]) -> tuple[float, float, float]:
    """(bound, critical path, total work) from the item times a stage run reported in its
    JUnit file (one test suite per gate): the bound for the items as they actually ran."""
    times: dict[str, list[float]] = {}
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        name = suite.get("name") or ""
        times[name] = [float(case.get("time") or 0.0) for case in suite.iter("testcase")]
    work = sum(sum(v) for v in times.values())
    finish: dict[str, float] = {}
    for gate in dag:
        start = max((finish[d] for d in gate.after), default=0.0)
        finish[gate.name] = start + max(times.get(gate.name) or [0.0])
    path = max(finish.values())
    return max(path, work / WORKERS), path, work


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
        env = {**os.environ, "WORK_SCALE": str(scale)}
        idle = {**os.environ, "WORK_SCALE": "0"}
        commands: dict[str, tuple[list[str], Mapping[str, str]]] = {
            "stage -n 2": ([*stage, "-n", "2"], env),
            "plain -n 2": ([*plain, "-n", "2"], env),
            "stage serial": (stage, env),
            "stage -n 2, zero work": ([*stage, "-n", "2"], idle),
            "plain -n 2, zero work": ([*plain, "-n", "2"], idle),
        }
        if args.quick:  # seconds, not minutes: the two -n 2 runs once, no warm-up
            commands = {k: v for k, v in commands.items() if k.endswith("-n 2")}
        variants: dict[str, Callable[[], float]] = {}
        measured: list[tuple[float, float, float]] = []

        def stage_run(cmd: list[str], cmd_env: Mapping[str, str]) -> float:
            wall = timed_run(cmd, root, cmd_env)
            measured.append(measured_bound(root / "reports" / "dag.xml", DAG))
            return wall

        for name, (cmd, cmd_env) in commands.items():
            if not args.quick:
                timed_run(cmd, root, idle)  # warm-up and check that it passes
            if name == "stage -n 2":
                variants[name] = lambda cmd=cmd, cmd_env=cmd_env: stage_run(  # type: ignore[misc]
                    cmd, cmd_env
                )
            else:
                variants[name] = lambda cmd=cmd, cmd_env=cmd_env: timed_run(  # type: ignore[misc]
                    cmd, root, cmd_env
                )
        print(f"scheduling: work {work_total:g}s, critical path {path:g}s, {rounds} rounds")
        times = interleaved(variants, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = figure.table(
        f"Wall time of the DAG stage (total work {fmt_seconds(work_total)}, critical path "
        f"{fmt_seconds(path)}, bound max(critical path, work / {WORKERS}) = "
        f"{fmt_seconds(bound)}); 'net' is the wall time minus the same variant's zero-work "
        "run of the round (start-up, collection, workers, reports); the measured bound uses "
        "the item times of the round's `stage -n 2` run (JUnit)",
        [
            "variant",
            "wall time",
            "ratio to bound",
            "net, ratio to bound",
            "net, ratio to measured bound",
            "n",
        ],
    )
    real_bounds = [m[0] for m in measured]
    for name in ("stage -n 2", "plain -n 2", "stage serial"):
        if name not in times:
            continue
        values = times[name]
        idle_name = f"{name}, zero work" if f"{name}, zero work" in times else None
        excess = excess_measured = "-"
        if idle_name:
            net = [v - z for v, z in zip(values, times[idle_name], strict=True)]
            excess = fmt_ratio(summarize([n / bound for n in net]))
            excess_measured = fmt_ratio(summarize(paired_ratios(net, real_bounds)))
        table.rows.append(
            [
                name,
                fmt_spread(summarize(values)),
                fmt_ratio(summarize([v / bound for v in values])),
                excess,
                excess_measured,
                str(rounds),
            ]
        )
    for name in ("stage -n 2, zero work", "plain -n 2, zero work"):
        if name in times:
            table.rows.append(
                [name, fmt_spread(summarize(times[name])), "-", "-", "-", str(rounds)]
            )

    vs_plain = summarize(paired_ratios(times["stage -n 2"], times["plain -n 2"]))
    figure.summary.append(
        f"stage -n 2 vs plain pytest -n 2 on the same items: {fmt_ratio(vs_plain)} wall time"
    )
    if "stage -n 2, zero work" in times:
        net_stage = summarize(
            [
                (v - z) / bound
                for v, z in zip(times["stage -n 2"], times["stage -n 2, zero work"], strict=True)
            ]
        )
        figure.summary.append(
            f"stage -n 2 (minus its zero-work run) vs the bound {fmt_seconds(bound)}: "
            f"{fmt_ratio(net_stage)}"
        )
        net_real = [
            v - z for v, z in zip(times["stage -n 2"], times["stage -n 2, zero work"], strict=True)
        ]
        figure.summary.append(
            "... vs the bound from the items' measured times: "
            + fmt_ratio(summarize(paired_ratios(net_real, real_bounds)))
        )
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
        "measured_bounds_s": [{"bound": b, "critical_path": c, "work": w} for b, c, w in measured],
    }
    figure.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

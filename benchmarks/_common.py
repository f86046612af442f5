"""Shared helpers of the benchmark scripts: machine facts, statistics, timed runs, output.

Every script writes ``<out>/benchmarks/<figure>.json`` and re-renders ``<out>/benchmarks.md``
from all figure files present there (default ``<out>`` is ``docs/``; ``--quick`` without
``--out`` writes into a fresh temporary directory so quick numbers never replace real ones).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FORMAT = "pytest-release-benchmark-1"
FIGURES: tuple[tuple[str, str], ...] = (
    ("overhead", "1. Plugin overhead"),
    ("overhead_memory", "1b. Peak memory in the number of tests"),
    ("scheduling", "2. Gate scheduling"),
    ("tool_gates", "3. Tool gates"),
    ("canary_judge", "4. Canary judge"),
    ("rollback", "5. Rollback"),
    ("canary_power", "6. Canary judge power on router evidence"),
)
_TITLES = dict(FIGURES)
# Figures written by another figure's script.
SCRIPTS = {"overhead_memory": "benchmarks/overhead.py --memory-only"}


class BenchmarkError(Exception):
    """A benchmark could not run; the message says what and how to fix it."""


# -- statistics ----------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (``q`` in 0..100) of ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p10: float
    p90: float
    minimum: float
    maximum: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median": self.median,
            "p10": self.p10,
            "p90": self.p90,
            "min": self.minimum,
            "max": self.maximum,
        }


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("cannot summarize an empty list of measurements")
    return Summary(
        n=len(values),
        median=percentile(values, 50),
        p10=percentile(values, 10),
        p90=percentile(values, 90),
        minimum=min(values),
        maximum=max(values),
    )


def paired_ratios(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Ratio of each measurement to the baseline measured in the same round."""
    if len(values) != len(baseline):
        raise ValueError(f"{len(values)} measurements but {len(baseline)} baseline measurements")
    return [v / b for v, b in zip(values, baseline, strict=True) if b > 0]


def fmt_seconds(value: float) -> str:
    if value < 0:
        return "minus " + fmt_seconds(-value)
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.1f} ms"


def fmt_spread(s: Summary, fmt: Callable[[float], str] = fmt_seconds) -> str:
    """``median (p10-p90)``."""
    return f"{fmt(s.median)} ({fmt(s.p10)}-{fmt(s.p90)})"


def fmt_ratio(s: Summary) -> str:
    return f"{s.median:.2f}x ({s.p10:.2f}-{s.p90:.2f})"


# -- machine -----------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _git_commit(),
    }


def describe_machine(machine: Mapping[str, Any]) -> str:
    load = machine.get("load_average_start") or []
    end = machine.get("load_average_end") or []
    text = (
        f"{machine.get('nproc')} CPUs ({machine.get('cpu_model')}), "
        f"{machine.get('ram_gib')} GiB RAM, Python {machine.get('python')}, "
        f"load average at start {' / '.join(f'{v:.2f}' for v in load) or 'n/a'} (1/5/15 min)"
    )
    if end:
        text += f", at end {' / '.join(f'{v:.2f}' for v in end)}"
    return text + f", commit {machine.get('commit')}"


# -- command line ---------------------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny input, 1-2 repetitions (seconds); results go to a temporary directory "
        "unless --out is given",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory: writes OUT/benchmarks/<figure>.json and OUT/benchmarks.md "
        "(default: docs/ of the repository)",
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions (overrides the default)")
    return p


def out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        path = Path(args.out)
    elif args.quick:
        path = Path(tempfile.mkdtemp(prefix="pytest-release-bench-quick-"))
    else:
        path = REPO / "docs"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def reps(args: argparse.Namespace, full: int, quick: int) -> int:
    value = int(args.reps) if args.reps is not None else (quick if args.quick else full)
    if value < 1:
        raise SystemExit(f"--reps must be at least 1, got {value}")
    return value


def command_line(script: str, argv: Sequence[str]) -> str:
    """How the figure was produced, as one would type it from the repository root."""
    cleaned: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--out":
            skip = True
            continue
        if arg.startswith("--out="):
            continue
        cleaned.append(arg)
    return shlex.join(["python", f"benchmarks/{script}", *cleaned])


# -- running things ---------------------------------------------------------------------------
def timed_run(
    cmd: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    *,
    ok_codes: Sequence[int] = (0,),
    timeout: float = 900.0,
) -> float:
    """Wall time of ``cmd`` in seconds; raises :class:`BenchmarkError` on an unexpected exit."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"{shlex.join(cmd)} (in {cwd}) took more than {timeout:g}s") from None
    except FileNotFoundError as exc:
        raise BenchmarkError(f"cannot run {shlex.join(cmd)}: {exc}") from None
    elapsed = time.perf_counter() - start
    if done.returncode not in ok_codes:
        tail = (done.stdout[-1500:] + "\n" + done.stderr[-1500:]).strip()
        raise BenchmarkError(
            f"{shlex.join(cmd)} (in {cwd}) exited with {done.returncode}, expected "
            f"{' or '.join(map(str, ok_codes))}:\n{tail}"
        )
    return elapsed


def interleaved(
    variants: Mapping[str, Callable[[], float]], rounds: int, *, progress: bool = True
) -> dict[str, list[float]]:
    """Each round runs every variant once, in an order rotated per round, so slow drift of
    the machine's load hits all variants alike; returns variant -> measurements."""
    names = list(variants)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            value = variants[name]()
            results[name].append(value)
            if progress:
                print(f"  round {r + 1}/{rounds} {name}: {value:.3f}", flush=True)
    return results


# -- output -------------------------------------------------------------------------------------
@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


@dataclass
class Figure:
    """One figure's results, written as JSON and rendered into benchmarks.md."""

    figure: str
    command: str
    quick: bool
    machine: dict[str, Any] = field(default_factory=machine_info)
    started: float = field(default_factory=time.time)
    summary: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    images: list[tuple[str, str]] = field(default_factory=list)  # (alt text, path from docs/)

    def __post_init__(self) -> None:
        if self.figure not in _TITLES:
            raise ValueError(f"unknown figure {self.figure!r}; known: {', '.join(_TITLES)}")

    def table(self, title: str, columns: list[str]) -> Table:
        table = Table(title, columns)
        self.tables.append(table)
        return table

    def to_dict(self) -> dict[str, Any]:
        machine = {**self.machine, "load_average_end": load_average()}
        return {
            "format": FORMAT,
            "figure": self.figure,
            "title": _TITLES[self.figure],
            "command": self.command,
            "quick": self.quick,
            "date": dt.datetime.fromtimestamp(self.started, dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "duration_s": round(time.time() - self.started, 1),
            "machine": machine,
            "summary": self.summary,
            "tables": [t.to_dict() for t in self.tables],
            "notes": self.notes,
            "images": self.images,
            "raw": self.raw,
        }

    def write(self, out: Path) -> Path:
        directory = out / "benchmarks"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.figure}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        markdown = out / "benchmarks.md"
        markdown.write_text(render_markdown(directory), encoding="utf-8")
        print(f"wrote {path} and {markdown}")
        return path


INTRO = """# Benchmarks

Speed and verdict quality of pytest-release, measured on a real machine with real tools
(pytest, xdist, ruff, mypy, newman, HAProxy, service processes on 127.0.0.1).  Every
script in `benchmarks/` produces one figure and runs with one command from the repository
root (`pip install -e '.[test]'`, `bash scripts/install-newman.sh`, `apt-get install
haproxy` first); `--quick` runs it on a tiny input in seconds.

How to read the numbers:

* every figure is a **ratio against a baseline measured in the same run**; variants run
  interleaved (round-robin, order rotated per round) so that the load of the machine
  (shared with other jobs) hits all of them alike, and ratios are taken per round;
* **median (p10-p90)** over the repetitions; `n` says how many;
* the machine line gives the number of CPUs, CPU model, RAM and the **load average when
  the script started** (and ended): on a loaded machine absolute times are inflated, the
  ratios much less so.

This file is generated: re-run a script to refresh its section
(`python benchmarks/<script>.py`), do not edit it by hand.
"""


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_figure(data: Mapping[str, Any]) -> str:
    lines = [f"## {data['title']}", ""]
    if data.get("quick"):
        lines += ["> **Quick run** (tiny input, few repetitions): not meaningful numbers.", ""]
    lines += [
        f"* command: `{data['command']}`",
        f"* date: {data['date']} (took {data['duration_s']:g} s)",
        f"* machine: {describe_machine(data['machine'])}",
        "",
    ]
    for line in data.get("summary", []):
        lines.append(f"**{line}**  ")
    if data.get("summary"):
        lines.append("")
    for alt, image in data.get("images", []):
        lines += [f"![{_md_escape(alt)}]({image})", ""]
    for table in data.get("tables", []):
        lines += [f"{table['title']}:", ""]
        lines.append("| " + " | ".join(_md_escape(c) for c in table["columns"]) + " |")
        lines.append("|" + "|".join("---" for _ in table["columns"]) + "|")
        for row in table["rows"]:
            lines.append("| " + " | ".join(_md_escape(str(c)) for c in row) + " |")
        lines.append("")
    for note in data.get("notes", []):
        lines.append(f"* {note}")
    if data.get("notes"):
        lines.append("")
    return "\n".join(lines)


def render_markdown(directory: Path) -> str:
    parts = [INTRO]
    for name, title in FIGURES:
        path = directory / f"{name}.json"
        if not path.exists():
            script = SCRIPTS.get(name, f"benchmarks/{name}.py")
            parts.append(f"## {title}\n\nNot measured yet: run `python {script}`.\n")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise BenchmarkError(f"{path} is not a {FORMAT} file; delete it and re-run")
        parts.append(render_figure(data))
    return "\n".join(parts)

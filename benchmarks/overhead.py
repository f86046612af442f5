"""Figure 1: plugin overhead on 2,000 trivial tests and on a real suite, and import time.

Suites: 2,000 generated trivial tests, and (not with ``--quick``) four test modules of
``packaging`` 26.4 (its PyPI sdist; it and its test dependencies are installed by this
script into a target directory of its own).  Variants (same flags ``-q -p no:cacheprovider``):

* ``plain``: ``pytest -p no:release`` (the plugin is installed but blocked) - the baseline;
* ``inert``: ``pytest`` (plugin loaded, no ``--stage``);
* ``stage``: ``pytest --stage=all`` (one gate selecting every test: JUnit, ledger, gating);
* ``plain-junit``: ``pytest -p no:release --junitxml=...``: plain pytest writing its own
  JUnit report, as a stage always does (a second baseline);

each serially and with ``-n 2``: wall time, CPU time and peak memory (``ru_maxrss`` of the
largest process, pytest or an xdist worker), ratios paired per round against ``plain``.

Import time: ``python -X importtime`` of
``import pytest_release.plugin`` after ``import pytest`` (baseline: ``import pytest``), and
the modules only a stage run imports (set difference against a plain run, self times
summed; baseline: all modules of the plain run), also by package.  Where the time goes: a
serial stage run profiled with cProfile on a CPU clock (``--profile-before DIR`` profiles
an older ``pytest_release`` package beside it, as the before).

Instructions (``--instructions``, needs valgrind): every variant once under valgrind's
cachegrind (``--cache-sim=no``, children traced: xdist workers count), instructions summed
over processes.  Wall and CPU time on a shared VM vary by +-15 % between identical runs;
instruction counts repeat within 0.1 %, so they resolve the few-percent differences the
goal is about.  With them, the stage's extra instructions on the trivial suite are split
into: importing filelock, importing the plugin's modules, start-up and collection work,
and running and reporting; beside them, what plain pytest's own ``--junitxml`` costs.
``--instructions=goal`` counts the goal table's: serially, plain, inert and stage on the
real suite, plain, plain-junit and stage on the trivial tests, and that split.

Also (not with ``--no-real-suite``) the whole packaging suite (every test module but
``tests/property``, about 64,000 tests) with ``-n 2``, plain against stage, reporting the
peak RSS of the controller and of the largest worker apart (``--whole-reps``,
``--no-whole-suite``); serially, 1,000 trivial tests and a one-test project (what a
stage's start-up adds in wall, CPU and peak RSS).  The figure begins with the goal table:
each goal figure of issue 27 from this run's measurements, met, not met, or not measured
in this run (``--instructions=goal`` counts only the instructions it needs).

Memory (figure 1b, ``overhead_memory``): peak RSS of plain and stage runs on 1,000,
10,000 and 60,000 trivial tests (``--memory-sizes``), serially and with ``-n 2``, and the
slope of each in the number of tests; ``--memory-only`` measures just this figure.

    python benchmarks/overhead.py [--quick] [--reps N] [--out DIR] [--no-real-suite]
                                  [--instructions[=all|goal]] [--no-whole-suite]
                                  [--whole-reps N] [--memory-only] [--memory-sizes N,N,..]
                                  [--memory-reps N] [--memory-no-xdist]
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)
from _goals import Goal, goal_table, ratio_goal
from _memory_slope import memory_slope

PYPROJECT = """\
[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.pytest-release.gates.all]
description = "every test of the benchmark project"
paths = ["tests/*"]

[tool.pytest-release.stages.all]
gates = ["all"]
"""
FLAGS = ["-q", "-p", "no:cacheprovider"]
MODES: dict[str, list[str]] = {
    "plain": ["-p", "no:release"],
    # pytest's own JUnit report: what a stage always writes, so its cost is part of the
    # stage's, and this is the baseline that has it too.
    "plain-junit": ["-p", "no:release", "--junitxml=reports/plain-junit.xml"],
    "inert": [],
    "stage": ["--stage=all", "--release-id=bench"],
}


def make_project(root: Path, tests: int, per_file: int = 100) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    files = max(1, -(-tests // per_file))
    written = 0
    for f in range(files):
        count = min(per_file, tests - written)
        body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(count))
        (root / "tests" / f"test_trivial_{f:03d}.py").write_text(body, encoding="utf-8")
        written += count


PACKAGING = "packaging==26.4"
PACKAGING_TEST_DEPS = ("pretend", "tomli_w")
PACKAGING_TESTS = (
    "tests/test_specifiers.py",
    "tests/test_markers.py",
    "tests/test_tags.py",
    "tests/test_metadata.py",
)
# The whole suite: every test module but tests/property (hypothesis-based: it needs
# hypothesis, and its random examples make its work differ from run to run).
WHOLE_SUITE_ARGS = ("--ignore=tests/property",)


def make_real_suite(root: Path) -> tuple[Path, dict[str, str]]:
    """``packaging``'s sdist (tests included) unpacked in ``root``, with the release table
    appended to its pyproject.toml; returns the environment that finds its test
    dependencies (installed with pip into ``root/deps``)."""
    download = root / "download"
    deps = root / "deps"
    for cmd in (
        ["download", "--no-deps", "--no-binary", ":all:", PACKAGING, "-d", str(download)],
        ["install", "--target", str(deps), PACKAGING, *PACKAGING_TEST_DEPS],
    ):
        done = subprocess.run(
            [PYTHON, "-m", "pip", "--disable-pip-version-check", "-q", *cmd],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise BenchmarkError(f"pip {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    (sdist,) = download.glob("packaging-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(root, filter="data")
    (project,) = (p for p in root.glob("packaging-*") if p.is_dir())
    pyproject = project / "pyproject.toml"
    release = PYPROJECT.split("\n\n", 1)[1]  # the [tool.pytest-release...] tables
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + "\n" + release, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(deps), os.environ.get("PYTHONPATH", "")) if p)
    return project, {**os.environ, "PYTHONPATH": path}


@dataclass(frozen=True)
class Usage:
    wall: float  # s
    cpu: float  # s, user + sys of pytest and its xdist workers
    rss: float  # MiB, peak resident memory of the largest of those processes


def measured_run(cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Usage:
    """Run ``cmd`` once; ``os.wait4`` gives its CPU time and peak memory (the child's and
    those of the processes it waited for: xdist workers)."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace")[-3000:]
            raise BenchmarkError(
                f"{' '.join(cmd)} (in {cwd}) exited with {proc.returncode}:\n{tail}"
            )
    return Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


# pytest in a process that reports its own peak RSS and that of the children it waited
# for (xdist's workers), so the controller and the workers are told apart.
RSS_RUNNER = """\
import json, resource, sys
import pytest
code = pytest.main(sys.argv[2:])
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"controller": own / 1024, "workers": workers / 1024}, out)
sys.exit(int(code))
"""


@dataclass(frozen=True)
class SplitUsage:
    usage: Usage
    controller: float  # MiB, peak RSS of the pytest process (the xdist controller)
    workers: float  # MiB, peak RSS of the largest xdist worker (0 without xdist)


def split_run(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> SplitUsage:
    """``pytest args`` once: wall, CPU, and peak RSS of the controller and of its workers."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rss.json"
        usage = measured_run([PYTHON, "-c", RSS_RUNNER, str(result), *args], cwd, env)
        rss = json.loads(result.read_text(encoding="utf-8"))
    return SplitUsage(usage, float(rss["controller"]), float(rss["workers"]))


def collected(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None) -> int:
    """How many tests ``pytest args --co`` collects (``args`` holding one ``-q``)."""
    done = subprocess.run(
        [PYTHON, "-m", "pytest", *args, "--co"],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    found = re.search(r"^(\d+) tests? collected", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise BenchmarkError(f"pytest --co {' '.join(args)} failed:\n{done.stdout[-2000:]}")
    return int(found.group(1))


def pytest_cmd(mode: str, xdist: bool) -> list[str]:
    return [PYTHON, "-m", "pytest", *FLAGS, *MODES[mode], *(["-n", "2"] if xdist else [])]


def before_notes(path: Path) -> list[str]:
    """The headline lines of an earlier run's ``overhead.json``, marked as the before."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        machine = data["machine"]
        when = f"commit {machine['commit']}, {data['date']}, load average at start " + (
            " / ".join(f"{v:.2f}" for v in machine["load_average_start"])
        )
        return [f"Before ({when}): {line}" for line in data["summary"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchmarkError(
            f"--before {path}: not an overhead.json of this script: {exc}"
        ) from None


def _record(usage: list[Usage], run: Usage) -> float:
    usage.append(run)
    return run.wall


# -- import time --------------------------------------------------------------------------
def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """(module, self us, cumulative us, depth) per ``-X importtime`` line."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3:
            continue
        self_us, cumulative, name = parts
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), int(self_us), int(cumulative), depth))
    return rows


def importtime(cmd: Sequence[str], cwd: Path) -> list[tuple[str, int, int, int]]:
    done = subprocess.run(
        [PYTHON, "-X", "importtime", *cmd], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise BenchmarkError(
            f"python -X importtime {' '.join(cmd)} failed ({done.returncode}):\n"
            + done.stderr[-2000:]
        )
    return parse_importtime(done.stderr)


def plugin_import(cwd: Path) -> tuple[float, float]:
    """(cumulative s of ``import pytest_release.plugin``, of ``import pytest``)."""
    rows = importtime(["-c", "import pytest; import pytest_release.plugin"], cwd)
    top = {name: cum for name, _, cum, depth in rows if depth == 0}
    if "pytest_release.plugin" not in top or "pytest" not in top:
        raise BenchmarkError("python -X importtime did not report pytest / pytest_release.plugin")
    return top["pytest_release.plugin"] / 1e6, top["pytest"] / 1e6


def module_self_times(cwd: Path, mode: str) -> dict[str, int]:
    """Module -> self import time (us) of a ``pytest`` run of the project in ``mode``."""
    rows = importtime(["-m", "pytest", *FLAGS, *MODES[mode]], cwd)
    return {name: self_us for name, self_us, _, _ in rows}


def extra_imports(plain: dict[str, int], other: dict[str, int]) -> tuple[float, float, int]:
    """(self s of modules ``other`` imports and ``plain`` does not, total self s of
    ``plain``, number of extra modules)."""
    extra = [us for name, us in other.items() if name not in plain]
    return sum(extra) / 1e6, sum(plain.values()) / 1e6, len(extra)


# -- instruction counts ------------------------------------------------------------------
_IREFS = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)", re.MULTILINE)


def valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None:
        raise BenchmarkError(
            "--instructions needs valgrind (cachegrind counts the instructions): "
            "apt-get install -y valgrind"
        )
    return found


def instructions(cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> int:
    """Instructions executed by ``cmd`` and every process it starts (xdist workers)."""
    done = subprocess.run(
        [
            valgrind(),
            "--tool=cachegrind",
            "--cache-sim=no",
            "--trace-children=yes",
            "--cachegrind-out-file=/dev/null",
            *cmd,
        ],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    counts = [int(n.replace(",", "")) for n in _IREFS.findall(done.stderr)]
    if done.returncode not in (0, 5) or not counts:
        raise BenchmarkError(
            f"valgrind {' '.join(cmd)} (in {cwd}) exited with {done.returncode}:\n"
            + (done.stdout + done.stderr)[-3000:]
        )
    return sum(counts)


def python_instructions(code: str, cwd: Path) -> int:
    return instructions([PYTHON, "-c", code], cwd)


def stage_modules(cwd: Path) -> list[str]:
    """The modules of this package (and filelock) a stage run imports, in import order."""
    rows = importtime(["-m", "pytest", *FLAGS, *MODES["stage"], "--co"], cwd)
    names = [name for name, _, _, _ in rows]
    wanted = [n for n in names if n.split(".")[0] in ("pytest_release", "filelock")]
    return list(dict.fromkeys(wanted))


def instruction_parts(cwd: Path, full: Mapping[str, int] | None = None) -> dict[str, int]:
    """The stage's extra instructions on the project in ``cwd``, by where they go
    (``full``: the plain and stage runs' counts, when measured already).

    The imports are measured on top of every module a plain ``pytest --co`` run imports
    (standard library included), so a module both runs need is not counted as the
    stage's."""
    rows = importtime(["-m", "pytest", *FLAGS, *MODES["plain"], "--co"], cwd)
    plain_modules = list(dict.fromkeys(name for name, _, _, _ in rows))
    imports = (
        "import importlib\n"
        f"for m in {plain_modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    base = python_instructions(imports, cwd)
    # A stage that reads the plan (the configuration unchanged) imports no pydantic: its
    # extra modules are filelock and this package's (the validation floor is measured apart).
    modules = stage_modules(cwd)
    lock = [m for m in modules if m.split(".")[0] == "filelock"]
    with_lock = python_instructions(
        imports + f"for m in {lock!r}: importlib.import_module(m)\n", cwd
    )
    everything = python_instructions(
        imports + f"for m in {modules!r}: importlib.import_module(m)\n", cwd
    )
    collect = {
        mode: instructions([*pytest_cmd(mode, False), "--co"], cwd) for mode in ("plain", "stage")
    }
    if full is None:
        full = {mode: instructions(pytest_cmd(mode, False), cwd) for mode in ("plain", "stage")}
    startup = collect["stage"] - collect["plain"]
    return {
        "plain": full["plain"],
        "stage": full["stage"],
        f"import filelock (the ledger's lock; {len(lock)} modules)": with_lock - base,
        f"import the plugin's modules a stage uses ({len(modules) - len(lock)} modules)": (
            everything - with_lock
        ),
        "start-up and collection work (configuration, ledger checks, gate assignment)": (
            startup - (everything - base)
        ),
        "running and reporting (per-test hooks, JUnit, ledger, stage report)": (
            full["stage"] - full["plain"] - startup
        ),
    }


# -- the validation floor ----------------------------------------------------------------
FLOOR_RUNNER = """\
import json, resource, sys, time
import pytest  # what every run has loaded already
from pathlib import Path

def now():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.process_time()

rss0, cpu0 = now()
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
rss1, cpu1 = now()
from pytest_release.config.release import load_release_config, read_table
from pytest_release.gates import GateKinds
rss2, cpu2 = now()
load_release_config(read_table(Path("pyproject.toml"), pyproject=True), "bench", GateKinds({}))
rss3, cpu3 = now()
json.dump({"pydantic": [rss1 - rss0, cpu1 - cpu0],
           "models": [rss2 - rss1, cpu2 - cpu1],
           "validation": [rss3 - rss2, cpu3 - cpu2]}, sys.stdout)
"""


def validation_floor(cwd: Path) -> dict[str, tuple[float, float]]:
    """Peak-RSS growth (MiB) and CPU (s) of what every stage process must load to
    validate its configuration: pydantic, the configuration models, one validation."""
    done = subprocess.run(
        [PYTHON, "-c", FLOOR_RUNNER], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise BenchmarkError(f"validation floor run failed:\n{done.stderr[-2000:]}")
    return {part: (float(v[0]), float(v[1])) for part, v in json.loads(done.stdout).items()}


# -- where the time goes -----------------------------------------------------------------
PROFILE_RUNNER = """\
import cProfile, sys, time
import pytest
profile = cProfile.Profile(time.process_time)  # CPU time: load on the machine does not count
profile.enable()
try:
    code = pytest.main(sys.argv[2:])
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
sys.exit(int(code))
"""


@dataclass(frozen=True)
class ProfileRow:
    function: str
    calls: int
    cumulative: float  # CPU s, profiled


@dataclass(frozen=True)
class Profile:
    total: float  # CPU s of the profiled run
    plugin_self: float  # CPU s spent in pytest_release's own code (self time)
    pydantic_self: float  # CPU s in pydantic and pydantic_core (import, validation)
    rows: tuple[ProfileRow, ...]  # the plugin's functions, largest cumulative time first


def profile_stage(cwd: Path, args: Sequence[str], env: Mapping[str, str] | None) -> Profile:
    """Run ``pytest args`` once under cProfile (CPU time) and summarise the plugin's part."""
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stage.prof"
        done = subprocess.run(
            [PYTHON, "-c", PROFILE_RUNNER, str(out), *args],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise BenchmarkError(f"profiled run failed ({done.returncode}):\n{done.stdout[-2000:]}")
        stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    total = plugin_self = pydantic_self = 0.0
    rows: list[ProfileRow] = []
    for (filename, line, name), (_, calls, tottime, cumulative, _) in stats.items():
        total += tottime
        if "/pydantic" in filename:
            pydantic_self += tottime
        marker = "/pytest_release/"
        if marker in filename:
            plugin_self += tottime
            module = filename.split(marker, 1)[1].removesuffix(".py").replace("/", ".")
            rows.append(ProfileRow(f"{module}:{line} {name}", calls, cumulative))
    rows.sort(key=lambda r: -r.cumulative)
    return Profile(total, plugin_self, pydantic_self, tuple(rows))


def profile_tables(
    figure: Figure,
    label: str,
    profiles: Sequence[tuple[str, Profile]],
    top: int,
) -> None:
    summary = figure.table(
        f"Where a serial stage run on {label} spends its CPU time (cProfile with a CPU "
        "clock, one run each; profiling inflates Python-heavy code, so compare shares, "
        "not seconds, with the timings above)",
        ["code", "profiled CPU", "plugin code (self time)", "share", "pydantic (self time)"],
    )
    for name, prof in profiles:
        summary.rows.append(
            [
                name,
                fmt_seconds(prof.total),
                fmt_seconds(prof.plugin_self),
                f"{100 * prof.plugin_self / prof.total:.1f} %",
                fmt_seconds(prof.pydantic_self),
            ]
        )
    for name, prof in profiles:
        table = figure.table(
            f"{name}: the plugin's functions with the largest cumulative CPU time (includes "
            "what they call; module bodies are imports)",
            ["function", "calls", "cumulative CPU", "share of the run"],
        )
        for row in prof.rows[:top]:
            table.rows.append(
                [
                    f"`{row.function}`",
                    str(row.calls),
                    fmt_seconds(row.cumulative),
                    f"{100 * row.cumulative / prof.total:.1f} %",
                ]
            )


IMPORT_FAMILIES = (
    ("pydantic", ("pydantic", "pydantic_core", "annotated_types", "typing_inspection")),
    ("pytest_release.config* (the validated tables)", ("pytest_release.config",)),
    ("other pytest_release modules", ("pytest_release",)),
    ("filelock", ("filelock",)),
)


def import_families(plain: dict[str, int], stage: dict[str, int]) -> dict[str, int]:
    """Self import time (us) of the modules ``stage`` imports and ``plain`` does not, by
    package family (the first family whose prefix matches; the rest as "other")."""
    totals: dict[str, int] = {}
    for name, us in stage.items():
        if name in plain:
            continue
        family = next(
            (
                label
                for label, prefixes in IMPORT_FAMILIES
                if any(
                    name == p or name.startswith(p + ".") or name.startswith(p + "_")
                    for p in prefixes
                )
            ),
            "other (standard library and dependencies)",
        )
        totals[family] = totals.get(family, 0) + us
    return totals


# -- small projects, serial: 1,000 trivial tests and the start-up of a one-test stage --------
# A stage that validates its configuration: the first stage after a change (or one with
# the plan cache off). ``stage`` reads the plan the warm-up run validated and cached.
VALIDATING = "stage, validating"


def plain_and_stage(project: Path, label: str, rounds: int, warm: bool) -> dict[str, list[Usage]]:
    """Serial ``plain``, ``stage`` (from the plan cache) and validating stage runs of
    ``project``, interleaved, ``rounds`` each."""
    usage: dict[str, list[Usage]] = {"plain": [], "stage": [], VALIDATING: []}
    variants: dict[str, Callable[[], float]] = {}
    for mode in usage:
        if mode == VALIDATING:
            cmd = [*pytest_cmd("stage", False), "--release-plan-cache=off"]
        else:
            cmd = pytest_cmd(mode, False)
        if warm or mode == "stage":  # the stage's untimed run validates and caches its plan
            measured_run(cmd, project)
        variants[mode] = lambda cmd=cmd, u=usage[mode]: _record(u, measured_run(cmd, project))  # type: ignore[misc]
    print(f"overhead: {label}, {rounds} rounds", flush=True)
    interleaved(variants, rounds)
    return usage


def small_tables(figure: Figure, small: Mapping[str, tuple[str, dict[str, list[Usage]]]]) -> None:
    """One table: per small project, the stage's extra wall, CPU and peak RSS (paired)."""
    table = figure.table(
        "Small projects, serial: `pytest --stage=all` against `pytest -p no:release` (same "
        "round); what the stage adds, per round. `stage` reads the plan an earlier stage "
        "validated (the configuration is unchanged); `stage, validating` validates it "
        "(`--release-plan-cache=off`: the first stage after a change)",
        ["project", "variant", "plain wall", "stage wall", "wall ratio", "extra wall",
         "extra CPU", "plain peak RSS (MiB)", "extra peak RSS", "n"],
    )  # fmt: skip
    for (label, usage), variant in itertools.product(small.values(), ("stage", VALIDATING)):
        plain, stage = usage["plain"], usage[variant]

        def diff(
            get: Callable[[Usage], float], stage: list[Usage] = stage, plain: list[Usage] = plain
        ) -> list[float]:
            return [get(s) - get(p) for s, p in zip(stage, plain, strict=True)]

        table.rows.append(
            [
                label,
                variant,
                fmt_spread(summarize([u.wall for u in plain])),
                fmt_spread(summarize([u.wall for u in stage])),
                fmt_ratio(
                    summarize(paired_ratios([u.wall for u in stage], [u.wall for u in plain]))
                ),
                fmt_spread(summarize(diff(lambda u: u.wall))),
                fmt_spread(summarize(diff(lambda u: u.cpu))),
                fmt_spread(summarize([u.rss for u in plain]), lambda v: f"{v:.1f}"),
                fmt_spread(summarize(diff(lambda u: u.rss)), lambda v: f"{v:+.1f} MiB"),
                str(len(plain)),
            ]
        )


# -- the whole packaging suite under xdist -------------------------------------------------
def whole_suite(
    figure: Figure, project: Path, env: Mapping[str, str], rounds: int
) -> dict[str, list[SplitUsage]]:
    """``-n 2`` over every packaging test (but tests/property): plain against stage, wall,
    CPU, and the peak RSS of the controller and of the largest worker."""
    tests = collected([*FLAGS, *MODES["plain"], *WHOLE_SUITE_ARGS], project, env)
    runs: dict[str, list[SplitUsage]] = {"plain": [], "stage": []}
    variants: dict[str, Callable[[], float]] = {}
    for mode in runs:
        args = [*FLAGS, *MODES[mode], "-n", "2", *WHOLE_SUITE_ARGS]
        variants[mode] = lambda a=args, r=runs[mode]: _keep_split(r, split_run(a, project, env))  # type: ignore[misc]
    # One untimed plain run first: bytecode and page cache warm, and the suite passes.
    split_run([*FLAGS, *MODES["plain"], "-n", "2", *WHOLE_SUITE_ARGS], project, env)
    print(f"overhead: {PACKAGING} whole suite ({tests} tests) -n 2, {rounds} rounds", flush=True)
    interleaved(variants, rounds)
    plain = runs["plain"]
    table = figure.table(
        f"`pytest -n 2` on the whole {PACKAGING} suite ({tests} tests; "
        f"{' '.join(WHOLE_SUITE_ARGS)}): wall, CPU (controller and workers) and peak RSS of "
        "the controller and of the largest worker, ratios to plain pytest in the same round",
        ["variant", "wall time", "wall ratio", "CPU time", "CPU ratio",
         "controller peak RSS (MiB)", "controller ratio", "largest worker peak RSS (MiB)",
         "worker ratio", "n"],
    )  # fmt: skip
    for mode, values in runs.items():

        def ratio(get: Callable[[SplitUsage], float], v: list[SplitUsage] = values) -> str:
            return fmt_ratio(summarize(paired_ratios([get(x) for x in v], [get(x) for x in plain])))

        table.rows.append(
            [
                f"{mode} -n 2",
                fmt_spread(summarize([v.usage.wall for v in values])),
                ratio(lambda v: v.usage.wall),
                fmt_spread(summarize([v.usage.cpu for v in values])),
                ratio(lambda v: v.usage.cpu),
                fmt_spread(summarize([v.controller for v in values]), lambda x: f"{x:.0f}"),
                ratio(lambda v: v.controller),
                fmt_spread(summarize([v.workers for v in values]), lambda x: f"{x:.0f}"),
                ratio(lambda v: v.workers),
                str(len(values)),
            ]
        )
    figure.raw["whole_suite"] = {
        "tests": tests,
        **{
            mode: [
                {"wall_s": v.usage.wall, "cpu_s": v.usage.cpu, "controller_mib": v.controller,
                 "workers_mib": v.workers}
                for v in values
            ]
            for mode, values in runs.items()
        },
    }  # fmt: skip
    return runs


# -- the goal table -----------------------------------------------------------------------
def goals(
    raw: Mapping[str, Any],
    times: Mapping[str, list[float]],
    cpu: Mapping[str, list[float]],
    rss: Mapping[str, list[float]],
    small: Mapping[str, tuple[str, dict[str, list[Usage]]]],
    whole: Mapping[str, list[SplitUsage]] | None,
    suites: Sequence[str],
    memory: Figure,
    trivial: str,
) -> list[Goal]:
    """The issue's goal figures from this run's measurements (paired per round, median)."""

    def paired(values: Mapping[str, list[float]], variant: str) -> tuple[float, str] | None:
        plain = variant.replace("stage", "plain").replace("inert", "plain")
        if variant not in values or plain not in values:
            return None
        s = summarize(paired_ratios(values[variant], values[plain]))
        return s.median, f"p10-p90 {s.p10:.2f}-{s.p90:.2f}, n {s.n}"

    def ratio(what: str, found: tuple[float, str] | None, limit: float = 1.05) -> Goal:
        return ratio_goal(
            what, None if found is None else found[0], limit, found[1] if found else ""
        )

    counts = raw.get("instructions", {})
    real = "packaging " if "packaging" in suites else None
    pkg = f"{PACKAGING}, {len(PACKAGING_TESTS)} test modules"
    instr = None
    if real and f"{real}stage" in counts:
        instr = (counts[f"{real}stage"] / counts[f"{real}plain"], "valgrind, one run each")
    trivial_instr = None
    if "stage" in counts:
        trivial_instr = (counts["stage"] / counts["plain"], "valgrind, one run each")
    found: list[Goal] = [
        ratio(f"{pkg}, serial: instructions", instr),
        ratio(f"{trivial}, serial: instructions", trivial_instr),
        ratio(f"{pkg}, serial: wall", paired(times, f"{real}stage") if real else None),
        ratio(f"{pkg}, serial: CPU", paired(cpu, f"{real}stage") if real else None),
        ratio(f"{pkg}, -n 2: wall", paired(times, f"{real}stage -n 2") if real else None),
        ratio(f"{trivial}, serial: wall", paired(times, "stage")),
        ratio(f"{trivial}, -n 2: wall", paired(times, "stage -n 2")),
    ]
    label, runs = small["thousand"]
    found.append(
        ratio(
            f"{label}, serial: wall",
            paired({k: [u.wall for u in v] for k, v in runs.items()}, "stage"),
        )
    )
    _, one = small["one"]
    parts: tuple[tuple[str, Callable[[Usage], float], float, str], ...] = (
        ("wall", lambda u: u.wall * 1000, 50.0, "ms"),
        ("CPU", lambda u: u.cpu * 1000, 50.0, "ms"),
        ("peak RSS", lambda u: u.rss, 3.0, "MiB"),
    )
    for part, get, limit, unit in parts:
        extra = summarize(
            [get(s) - get(p) for s, p in zip(one["stage"], one["plain"], strict=True)]
        )
        found.append(
            Goal(
                f"start-up of a one-test stage (configuration unchanged: plan cache): extra {part}",
                f"{extra.median:+.0f} {unit} "
                f"(p10-p90 {extra.p10:+.0f}-{extra.p90:+.0f}, n {extra.n})"
                if unit == "ms"
                else f"{extra.median:+.1f} {unit} (n {extra.n})",
                f"<= +{limit:g} {unit}",
                extra.median <= limit,
            )
        )
    found.append(ratio(f"peak RSS, {pkg}, serial", paired(rss, f"{real}stage") if real else None))
    for part, get in (
        ("controller", lambda v: v.controller),
        ("largest worker", lambda v: v.workers),
    ):
        whole_ratio = None
        if whole is not None:
            s = summarize(
                paired_ratios([get(v) for v in whole["stage"]], [get(v) for v in whole["plain"]])
            )
            whole_ratio = (s.median, f"n {s.n}")
        found.append(ratio(f"peak RSS, whole {PACKAGING} suite, -n 2: {part}", whole_ratio))
    memory_rss = memory.raw.get("memory_rss_mib", {})
    sizes = sorted({int(key.split()[0]) for key in memory_rss})
    if len(sizes) >= 2:
        low, high = sizes[0], sizes[-1]

        def slope(mode: str) -> float:
            grow = summarize(memory_rss[f"{high} {mode}"]).median
            grow -= summarize(memory_rss[f"{low} {mode}"]).median
            return grow * 1024 / (high - low)

        plain_slope, stage_slope = slope("plain"), slope("stage")
        found.append(
            Goal(
                f"peak RSS slope, {low} to {high} trivial tests, serial (KiB/test)",
                f"stage {stage_slope:.2f}, plain {plain_slope:.2f} "
                f"({stage_slope - plain_slope:+.2f})",
                "flat: within 5 % of plain's slope",
                stage_slope <= 1.05 * plain_slope,
            )
        )
    found.append(Goal("attrs stage attributes, serial: wall", "-", "<= 1.05x", None))
    inert = None
    if real and f"{real}inert" in counts:
        inert = (counts[f"{real}inert"] / counts[f"{real}plain"], "valgrind, one run")
    found.append(ratio(f"inert, {pkg}, serial: instructions", inert, 1.01))
    found.append(ratio(f"inert, {trivial}, serial: wall", paired(times, "inert")))
    return found


def _keep_split(runs: list[SplitUsage], run: SplitUsage) -> float:
    runs.append(run)
    return run.usage.wall


# -- main ---------------------------------------------------------------------------------------
# The trivial suite's variants of ``--instructions=goal``: the stage against plain pytest
# and against plain pytest writing its own JUnit report.
GOAL_TRIVIAL = ("plain", "plain-junit", "stage")


def instruction_tables(
    figure: Figure,
    suites: Sequence[tuple[str, Path, dict[str, str] | None, str]],
    with_xdist: bool,
    scope: str = "all",
) -> None:
    """Instruction counts of every variant, and where the stage's extra ones go; with
    ``scope="goal"`` only the goal table's, serially: plain, inert and stage on the real
    suite (each packaging run takes minutes under valgrind), plain, plain-junit and stage
    on the trivial tests (wall time there is mostly the machine's noise)."""
    counts: dict[str, int] = {}
    if scope == "goal":
        with_xdist = False
    for suite, cwd, suite_env, label in suites:
        modes = list(MODES)
        if scope == "goal":
            modes = ["plain", "inert", "stage"] if suite == "packaging" else list(GOAL_TRIVIAL)
        paths = list(PACKAGING_TESTS) if suite == "packaging" else []
        key = "" if suite == "trivial" else f"{suite} "
        table = figure.table(
            f"Instructions executed on {label} (valgrind cachegrind, every process: pytest "
            "and its xdist workers; one run each, repeatable within 0.1 %)",
            ["variant", "instructions", "ratio to plain", "ratio to plain-junit"],
        )
        for suffix in ("", " -n 2") if with_xdist else ("",):
            for mode in modes:
                print(f"overhead: instructions, {label}, {mode}{suffix}", flush=True)
                cmd = [*pytest_cmd(mode, bool(suffix)), *paths]
                counts[key + mode + suffix] = instructions(cmd, cwd, suite_env)
            plain = counts[key + "plain" + suffix]
            junit = counts.get(key + "plain-junit" + suffix)
            for mode in modes:
                n = counts[key + mode + suffix]
                table.rows.append(
                    [
                        mode + suffix,
                        f"{n / 1e9:.3f} G",
                        f"{n / plain:.3f}x",
                        f"{n / junit:.3f}x" if junit else "-",
                    ]
                )
        parts = []
        for suffix in ("", " -n 2") if with_xdist else ("",):
            stage = counts[key + "stage" + suffix]
            junit = counts.get(key + "plain-junit" + suffix)
            parts.append(
                f"{'serial' if not suffix else '-n 2'} "
                f"{stage / counts[key + 'plain' + suffix]:.3f}x"
                + (f" ({stage / junit:.3f}x of plain --junitxml)" if junit else "")
            )
        figure.summary.append(
            f"instructions, stage vs plain pytest on {label}: " + ", ".join(parts)
        )
    figure.raw["instructions"] = counts

    suite, cwd, _, label = suites[0]
    print("overhead: instructions, where the stage's extra ones go", flush=True)
    split = instruction_parts(cwd, {mode: counts[mode] for mode in ("plain", "stage")})
    plain, stage = split.pop("plain"), split.pop("stage")
    table = figure.table(
        f"Where a serial stage's extra instructions go on {label}: imports measured in "
        "`python -c` after `import pytest`, start-up and collection as `--co` runs (stage "
        "minus plain, minus those imports), running and reporting as the rest; shares of "
        f"plain pytest's {plain / 1e9:.3f} G",
        ["part", "instructions", "share of plain pytest"],
    )
    for part, n in split.items():
        table.rows.append([part, f"{n / 1e6:.0f} M", f"{n / plain:.1%}"])
    table.rows.append(
        ["total (stage minus plain)", f"{(stage - plain) / 1e6:.0f} M", f"{stage / plain - 1:.1%}"]
    )
    if "plain-junit" in counts:
        # What a stage always does (a JUnit report), as pytest itself does it.
        junit = counts["plain-junit"] - plain
        table.rows.append(
            [
                "for comparison: plain pytest's own --junitxml",
                f"{junit / 1e6:.0f} M",
                f"{junit / plain:.1%}",
            ]
        )
    figure.raw["instruction_parts"] = {"plain": plain, "stage": stage, **split}


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=None, help="number of trivial tests (2000)")
    p.add_argument("--no-xdist", action="store_true", help="skip the -n 2 variants")
    p.add_argument(
        "--before",
        type=Path,
        default=None,
        help="overhead.json of an earlier run (e.g. the previous commit): its headline "
        "ratios are listed under this run's, as the before of a change",
    )
    p.add_argument(
        "--no-real-suite", action="store_true", help=f"skip the {PACKAGING} suite (needs PyPI)"
    )
    p.add_argument(
        "--profile-before",
        type=Path,
        default=None,
        help="a directory holding an older pytest_release package (e.g. `git archive` of "
        "an earlier commit): its profile is listed beside this tree's, as the before",
    )
    p.add_argument(
        "--instructions",
        nargs="?",
        const="all",
        default=None,
        choices=("all", "goal"),
        help="also count instructions with valgrind (cachegrind): exact to 0.1%%, where "
        "times on a shared machine vary by 15%%; 'all' (the default) every variant and "
        "where the stage's extra ones go (an hour), 'goal' only what the goal table needs "
        "(plain, inert and stage, serial, on the real suite)",
    )
    p.add_argument(
        "--no-whole-suite",
        action="store_true",
        help=f"skip the whole {PACKAGING} suite under -n 2 (about 64,000 tests)",
    )
    p.add_argument(
        "--whole-reps", type=int, default=None, help="rounds of the whole-suite runs (3)"
    )
    p.add_argument("--memory-only", action="store_true", help="measure only the memory figure (1b)")
    p.add_argument(
        "--memory-sizes",
        default=None,
        help="numbers of trivial tests of the memory figure, comma-separated (1000,10000,60000)",
    )
    p.add_argument(
        "--memory-reps", type=int, default=None, help="rounds per size of the memory figure (5)"
    )
    p.add_argument(
        "--memory-no-xdist", action="store_true", help="memory figure: skip the -n 2 runs"
    )
    args = p.parse_args(argv)
    # Measured as users run: Python keeps bytecode (its default). With
    # PYTHONDONTWRITEBYTECODE=1 (set on some machines and CI images) an editable or
    # source tree is compiled again in every run, which plain pytest, installed with its
    # bytecode, never pays: about 30 ms of a stage's start-up measured for nothing.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    out = out_dir(args)
    rounds = reps(args, full=7, quick=1)  # bad arguments are refused before anything runs
    whole_rounds = args.whole_reps if args.whole_reps is not None else 3
    if whole_rounds < 1:
        raise SystemExit(f"--whole-reps must be at least 1, got {whole_rounds}")
    memory = memory_figure(args, sys.argv[1:] if argv is None else argv)
    if args.memory_only:
        memory.write(out)
        return 0
    tests = args.tests or (20 if args.quick else 2000)
    with_xdist = not (args.no_xdist or args.quick)
    figure = Figure(
        "overhead", command_line("overhead.py", sys.argv[1:] if argv is None else argv), args.quick
    )
    root = Path(tempfile.mkdtemp(prefix="pytest-release-bench-overhead-"))
    try:
        make_project(root, tests)
        suites: list[tuple[str, Path, dict[str, str] | None, str]] = [
            ("trivial", root, None, f"{tests} trivial tests")
        ]
        if not (args.quick or args.no_real_suite):
            print(f"overhead: installing {PACKAGING} (sdist) and its test dependencies", flush=True)
            project, real_env = make_real_suite(root / "real")
            suites.append(
                (
                    "packaging",
                    project,
                    real_env,
                    f"{PACKAGING} (sdist), {len(PACKAGING_TESTS)} test modules",
                )
            )
        times: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        rss: dict[str, list[float]] = {}
        for suite, cwd, suite_env, label in suites:
            paths = list(PACKAGING_TESTS) if suite == "packaging" else []
            variants: dict[str, Callable[[], float]] = {}
            usage: dict[str, list[Usage]] = {}
            for xdist in (False, True) if with_xdist else (False,):
                for mode in MODES:
                    cmd = [*pytest_cmd(mode, xdist), *paths]
                    name = mode + (" -n 2" if xdist else "")
                    if not args.quick:
                        # Warm-up (bytecode, page cache) before measuring; checks that it passes.
                        measured_run(cmd, cwd, suite_env)
                    usage[name] = []
                    variants[name] = lambda cmd=cmd, u=usage[name], cwd=cwd, env=suite_env: _record(  # type: ignore[misc]
                        u, measured_run(cmd, cwd, env)
                    )
            print(f"overhead: {label}, {rounds} rounds", flush=True)
            walls = interleaved(variants, rounds)
            key = "" if suite == "trivial" else f"{suite} "
            for name, values in walls.items():
                times[key + name] = values
                cpu[key + name] = [u.cpu for u in usage[name]]
                rss[key + name] = [u.rss for u in usage[name]]
            table = figure.table(
                f"`pytest` on {label}: wall time, CPU time (user + sys of pytest and its xdist "
                "workers) and peak memory (largest process), ratios to `pytest -p no:release` "
                "(same round, same -n)",
                [
                    "variant",
                    "command",
                    "wall time",
                    "wall ratio to plain",
                    "CPU time",
                    "CPU ratio to plain",
                    "peak RSS (MiB)",
                    "RSS ratio to plain",
                    "n",
                ],
            )
            for name in walls:
                xdist = name.endswith("-n 2")
                plain = key + ("plain -n 2" if xdist else "plain")
                mode = name.split()[0]
                shown = " ".join(["pytest", *MODES[mode], *(["-n", "2"] if xdist else [])])
                table.rows.append(
                    [
                        name,
                        f"`{shown}`",
                        fmt_spread(summarize(times[key + name])),
                        fmt_ratio(summarize(paired_ratios(times[key + name], times[plain]))),
                        fmt_spread(summarize(cpu[key + name])),
                        fmt_ratio(summarize(paired_ratios(cpu[key + name], cpu[plain]))),
                        fmt_spread(summarize(rss[key + name]), lambda v: f"{v:.0f}"),
                        fmt_ratio(summarize(paired_ratios(rss[key + name], rss[plain]))),
                        str(rounds),
                    ]
                )
        # Where the time goes: a profile of the stage on the real suite (else the trivial one).
        suite, cwd, suite_env, label = suites[-1]
        paths = list(PACKAGING_TESTS) if suite == "packaging" else []
        stage_args = [*FLAGS, *MODES["stage"], *paths]
        profiles = [("this tree", profile_stage(cwd, stage_args, suite_env))]
        if args.profile_before is not None:
            before_env = dict(suite_env if suite_env is not None else os.environ)
            before_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(args.profile_before), before_env.get("PYTHONPATH", "")) if p
            )
            profiles.insert(0, ("before", profile_stage(cwd, stage_args, before_env)))
        profile_tables(figure, label, profiles, top=5 if args.quick else 14)
        figure.raw["profile"] = {
            name: {
                "total_s": prof.total,
                "plugin_self_s": prof.plugin_self,
                "pydantic_self_s": prof.pydantic_self,
                "top": [[r.function, r.calls, r.cumulative] for r in prof.rows[:30]],
            }
            for name, prof in profiles
        }
        figure.raw["wall_times_s"] = times
        figure.raw["cpu_times_s"] = cpu
        figure.raw["peak_rss_mib"] = rss
        figure.raw["tests"] = tests

        # Import time.
        import_reps = 1 if args.quick else max(rounds * 2, 5)
        module_reps = 1 if args.quick else 3  # each is three pytest runs of the project
        plugin, pytest_t, ratios = [], [], []
        for _ in range(import_reps):
            a, b = plugin_import(root)
            plugin.append(a)
            pytest_t.append(b)
            ratios.append(a / b)
        imports = figure.table(
            "Import time (`python -X importtime`), baseline `import pytest` / the imports "
            "of a plain `pytest` run",
            ["what", "time", "baseline", "ratio", "n"],
        )
        imports.rows.append(
            [
                "`import pytest_release.plugin` (after `import pytest`), cumulative",
                fmt_spread(summarize(plugin)),
                fmt_spread(summarize(pytest_t)),
                fmt_ratio(summarize(ratios)),
                str(import_reps),
            ]
        )
        figure.raw["import_plugin_s"] = plugin
        figure.raw["import_pytest_s"] = pytest_t
        extra: dict[str, list[float]] = {"inert": [], "stage": []}
        base: dict[str, list[float]] = {"inert": [], "stage": []}
        counts: dict[str, int] = {}
        families: dict[str, list[float]] = {}
        for _ in range(module_reps):
            runs = {mode: module_self_times(root, mode) for mode in ("plain", "inert", "stage")}
            for mode in ("inert", "stage"):
                e, b, counts[mode] = extra_imports(runs["plain"], runs[mode])
                extra[mode].append(e)
                base[mode].append(b)
            for family, us in import_families(runs["plain"], runs["stage"]).items():
                families.setdefault(family, []).append(us / 1e6)
        for mode in ("inert", "stage"):
            label = "plugin loaded, no --stage" if mode == "inert" else "--stage=all"
            imports.rows.append(
                [
                    f"modules only `{' '.join(['pytest', *MODES[mode]])}` imports ({label}; "
                    f"{counts[mode]} modules), self times summed",
                    fmt_spread(summarize(extra[mode])),
                    fmt_spread(summarize(base[mode])),
                    fmt_ratio(summarize(paired_ratios(extra[mode], base[mode]))),
                    str(module_reps),
                ]
            )
            figure.raw[f"import_extra_{mode}_s"] = extra[mode]
            figure.raw[f"import_plain_total_s_{mode}"] = base[mode]
        by_family = figure.table(
            "Modules only a stage run imports (per process: the controller and each xdist "
            "worker import them), self times summed by package",
            ["package", "self time", "n"],
        )
        for family, values in sorted(families.items(), key=lambda kv: -sum(kv[1])):
            by_family.rows.append([family, fmt_spread(summarize(values)), str(len(values))])
        figure.raw["import_families_s"] = families

        # The floor: what validating the configuration costs every stage process, against
        # the goal's budget (5 % of plain pytest's peak RSS and CPU on the trivial suite).
        floors = [validation_floor(root) for _ in range(1 if args.quick else 5)]
        plain_rss = summarize(rss["plain"]).median
        plain_cpu = summarize(cpu["plain"]).median
        floor = figure.table(
            "The validation floor: peak-RSS growth and CPU time of what every stage process "
            "loads to validate its configuration (measured in one process after `import "
            "pytest`), against 5 % of plain pytest on the trivial tests "
            f"({0.05 * plain_rss:.1f} MiB, {fmt_seconds(0.05 * plain_cpu)} CPU)",
            [
                "part",
                "peak RSS growth",
                "share of the 5 % RSS budget",
                "CPU",
                "share of the 5 % CPU budget",
                "n",
            ],
        )
        for part, label in (
            ("pydantic", "import pydantic (BaseModel, Field, validators)"),
            ("models", "the core configuration models (class creation builds their schemas)"),
            ("validation", "validating the project's configuration"),
        ):
            mib = [f[part][0] for f in floors]
            secs = [f[part][1] for f in floors]
            floor.rows.append(
                [
                    label,
                    fmt_spread(summarize(mib), lambda v: f"{v:.1f} MiB"),
                    f"{summarize(mib).median / (0.05 * plain_rss):.0%}",
                    fmt_spread(summarize(secs)),
                    f"{summarize(secs).median / (0.05 * plain_cpu):.0%}",
                    str(len(floors)),
                ]
            )
        total_mib = sum(summarize([f[p][0] for f in floors]).median for p in floors[0])
        total_cpu = sum(summarize([f[p][1] for f in floors]).median for p in floors[0])
        figure.summary.append(
            f"validation floor per stage process: {total_mib:.1f} MiB peak RSS "
            f"({total_mib / plain_rss:.0%} of plain pytest's {plain_rss:.0f} MiB) and "
            f"{fmt_seconds(total_cpu)} CPU ({total_cpu / plain_cpu:.0%} of plain's "
            f"{fmt_seconds(plain_cpu)}) on {tests} trivial tests"
        )
        figure.raw["validation_floor"] = floors

        if args.instructions:
            instruction_tables(figure, suites, with_xdist, args.instructions)

        # Small projects, serial: 1,000 trivial tests and a one-test stage (start-up).
        small: dict[str, tuple[str, dict[str, list[Usage]]]] = {}
        for key, size in (("one", 1), ("thousand", 10 if args.quick else 1000)):
            project = root / f"small-{size}"
            make_project(project, size)
            label = f"{size} trivial test{'s' if size > 1 else ''}"
            small_rounds = 1 if args.quick else rounds * 2
            small[key] = (label, plain_and_stage(project, label, small_rounds, not args.quick))
        small_tables(figure, small)
        figure.raw["small"] = {
            key: {mode: [[u.wall, u.cpu, u.rss] for u in usage] for mode, usage in runs.items()}
            for key, (_, runs) in small.items()
        }
        whole: dict[str, list[SplitUsage]] | None = None
        if suites[-1][0] == "packaging" and not args.no_whole_suite:
            _, project, whole_env, _ = suites[-1]
            assert whole_env is not None
            whole = whole_suite(figure, project, whole_env, whole_rounds)

        for suite, _, _, label in suites:
            key = "" if suite == "trivial" else f"{suite} "
            for name in ("inert", "stage"):
                parts = []
                for suffix in ("", " -n 2") if with_xdist else ("",):
                    plain = key + "plain" + suffix
                    wall = summarize(paired_ratios(times[key + name + suffix], times[plain]))
                    used = summarize(paired_ratios(cpu[key + name + suffix], cpu[plain]))
                    mem = summarize(paired_ratios(rss[key + name + suffix], rss[plain]))
                    parts.append(
                        f"{'serial' if not suffix else '-n 2'} {wall.median:.2f}x wall / "
                        f"{used.median:.2f}x CPU / {mem.median:.2f}x peak RSS"
                    )
                figure.summary.append(
                    f"{name} vs plain pytest on {label} (median ratios): " + ", ".join(parts)
                )
            parts = []
            for suffix in ("", " -n 2") if with_xdist else ("",):
                junit = key + "plain-junit" + suffix
                wall = summarize(paired_ratios(times[key + "stage" + suffix], times[junit]))
                used = summarize(paired_ratios(cpu[key + "stage" + suffix], cpu[junit]))
                parts.append(
                    f"{'serial' if not suffix else '-n 2'} {wall.median:.2f}x wall / "
                    f"{used.median:.2f}x CPU"
                )
            figure.summary.append(
                f"stage vs plain pytest --junitxml (pytest's own JUnit report) on {label} "
                "(median ratios): " + ", ".join(parts)
            )
        figure.summary.append(
            f"import pytest_release.plugin: {fmt_seconds(summarize(plugin).median)} "
            f"({fmt_ratio(summarize(ratios))} of import pytest)"
        )
        figure.notes += [
            f"The project is generated: {tests} tests `def test_i(): pass`, 100 per file; "
            "`--stage=all` runs "
            "a stage with one gate whose `paths` select every test, writes "
            "`reports/all.xml` and the ledger.",
            "Each variant runs once before measuring (bytecode and page cache warm).",
            "All variants load the same other installed plugins (xdist, cov, playwright, "
            "base-url); the baseline blocks only this plugin.",
        ]
        if not with_xdist:
            figure.notes.append("The -n 2 variants were skipped (--quick or --no-xdist).")
        goal_table(
            figure,
            goals(
                figure.raw,
                times,
                cpu,
                rss,
                small,
                whole,
                [s[0] for s in suites],
                memory,
                f"{tests:,} trivial tests",
            ),
        )
        if args.before is not None:
            figure.notes += before_notes(args.before)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figure.write(out)
    memory.write(out)
    return 0


def memory_figure(args: Any, argv: Sequence[str]) -> Figure:
    """Figure 1b: peak RSS by number of tests and its slope, plain against stage."""
    figure = Figure("overhead_memory", command_line("overhead.py", argv), args.quick)
    default = "20,200" if args.quick else "1000,10000,60000"
    try:
        sizes = sorted({int(v) for v in (args.memory_sizes or default).split(",")})
    except ValueError:
        raise SystemExit(
            f"--memory-sizes takes numbers of tests separated by commas, got {args.memory_sizes!r}"
        ) from None
    if len(sizes) < 2 or sizes[0] < 1:
        raise SystemExit(f"--memory-sizes needs two or more positive sizes, got {sizes}")
    rounds = args.memory_reps or (1 if args.quick else 5)
    xdist_modes = (False,) if args.quick or args.memory_no_xdist else (False, True)

    def measure(mode: str, xdist: bool, project: Path) -> float:
        return measured_run(pytest_cmd(mode, xdist), project).rss

    memory_slope(figure, sizes, rounds, xdist_modes, make_project, measure)
    figure.notes += [
        "Projects are generated: `def test_i(): pass`, 100 per file; `--stage=all` runs a "
        "stage with one gate selecting every test (JUnit, ledger, gating).",
        "Peak RSS is `ru_maxrss` of the largest process (`os.wait4`): the pytest process, "
        "or under `-n 2` the largest of the controller and its workers.",
    ]
    return figure


if __name__ == "__main__":
    sys.exit(main())

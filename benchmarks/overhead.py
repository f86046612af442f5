"""Figure 1: plugin overhead on 2,000 trivial tests, and the plugin's import time.

Variants (same generated project, same flags ``-q -p no:cacheprovider``):

* ``plain``: ``pytest -p no:release`` (the plugin is installed but blocked) - the baseline;
* ``inert``: ``pytest`` (plugin loaded, no ``--stage``);
* ``stage``: ``pytest --stage=all`` (one gate selecting every test: JUnit, ledger, gating);

each serially and with ``-n 2``.  Import time: ``python -X importtime`` of
``import pytest_release.plugin`` after ``import pytest`` (baseline: ``import pytest``), and
the modules only a stage run imports (set difference against a plain run, self times
summed; baseline: all modules of the plain run).

    python benchmarks/overhead.py [--quick] [--reps N] [--out DIR]
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_with_cpu(cmd: Sequence[str], cwd: Path, cpu: list[float]) -> float:
    """Wall time of ``cmd``; appends its CPU time (user + sys, xdist workers included: they
    are waited for by pytest) to ``cpu`` - much less sensitive to other jobs' load."""
    before = children_cpu()
    wall = timed_run(cmd, cwd)
    cpu.append(children_cpu() - before)
    return wall


def pytest_cmd(mode: str, xdist: bool) -> list[str]:
    return [PYTHON, "-m", "pytest", *FLAGS, *MODES[mode], *(["-n", "2"] if xdist else [])]


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


# -- main ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tests", type=int, default=None, help="number of trivial tests (2000)")
    p.add_argument("--no-xdist", action="store_true", help="skip the -n 2 variants")
    args = p.parse_args(argv)
    out = out_dir(args)
    rounds = reps(args, full=7, quick=1)
    tests = args.tests or (20 if args.quick else 2000)
    with_xdist = not (args.no_xdist or args.quick)
    figure = Figure(
        "overhead", command_line("overhead.py", sys.argv[1:] if argv is None else argv), args.quick
    )
    root = Path(tempfile.mkdtemp(prefix="pytest-release-bench-overhead-"))
    try:
        make_project(root, tests)
        variants: dict[str, Callable[[], float]] = {}
        cpu: dict[str, list[float]] = {}
        for xdist in (False, True) if with_xdist else (False,):
            for mode in MODES:
                cmd = pytest_cmd(mode, xdist)
                name = mode + (" -n 2" if xdist else "")
                if not args.quick:
                    # Warm-up (bytecode, page cache) before measuring; checks that it passes.
                    timed_run(cmd, root)
                cpu[name] = []
                variants[name] = lambda cmd=cmd, c=cpu[name]: timed_with_cpu(  # type: ignore[misc]
                    cmd, root, c
                )
        print(f"overhead: {tests} trivial tests, {rounds} rounds", flush=True)
        times = interleaved(variants, rounds)

        table = figure.table(
            f"`pytest` on {tests} trivial tests: wall time and CPU time (user + sys of pytest "
            "and its xdist workers), ratios to `pytest -p no:release` (same round, same -n)",
            [
                "variant",
                "command",
                "wall time",
                "wall ratio to plain",
                "CPU time",
                "CPU ratio to plain",
                "n",
            ],
        )
        for name, values in times.items():
            xdist = name.endswith("-n 2")
            plain = "plain -n 2" if xdist else "plain"
            mode = name.split()[0]
            shown = " ".join(["pytest", *MODES[mode], *(["-n", "2"] if xdist else [])])
            table.rows.append(
                [
                    name,
                    f"`{shown}`",
                    fmt_spread(summarize(values)),
                    fmt_ratio(summarize(paired_ratios(values, times[plain]))),
                    fmt_spread(summarize(cpu[name])),
                    fmt_ratio(summarize(paired_ratios(cpu[name], cpu[plain]))),
                    str(rounds),
                ]
            )
        figure.raw["wall_times_s"] = times
        figure.raw["cpu_times_s"] = cpu
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
        for _ in range(module_reps):
            runs = {mode: module_self_times(root, mode) for mode in MODES}
            for mode in ("inert", "stage"):
                e, b, counts[mode] = extra_imports(runs["plain"], runs[mode])
                extra[mode].append(e)
                base[mode].append(b)
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

        for name in ("inert", "stage"):
            parts = []
            for suffix in ("", " -n 2") if with_xdist else ("",):
                plain = "plain" + suffix
                wall = summarize(paired_ratios(times[name + suffix], times[plain]))
                used = summarize(paired_ratios(cpu[name + suffix], cpu[plain]))
                parts.append(
                    f"{'serial' if not suffix else '-n 2'} {wall.median:.2f}x wall / "
                    f"{used.median:.2f}x CPU"
                )
            figure.summary.append(
                f"{name} vs plain pytest on {tests} tests (median ratios): " + ", ".join(parts)
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
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figure.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

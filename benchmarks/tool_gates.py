"""Figure 3: tool gates vs running the same tools bare.

Lint: the ``lint`` gate (ruff check, ruff format --check, mypy, run concurrently by the
gate) on a snapshot of this repository's ``pytest_release/`` package (``git archive HEAD``)
vs the same three tools bare, one after the other and concurrently; cold (no ``.ruff_cache``,
``.mypy_cache``, gate cache) and warm (the same variant ran just before, untimed).

newman: the ``newman`` gate vs bare ``newman run`` (same JSON reporter) on
``suites/newman/shop.postman_collection.json`` against ``examples/shop`` on 127.0.0.1.

    python benchmarks/tool_gates.py [--quick] [--reps N] [--out DIR]
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import (
    PYTHON,
    REPO,
    BenchmarkError,
    Figure,
    command_line,
    fmt_ratio,
    fmt_spread,
    interleaved,
    out_dir,
    paired_ratios,
    parser,
    reps,
    summarize,
    timed_run,
)

BIN = Path(PYTHON).parent
COLLECTION = REPO / "suites" / "newman" / "shop.postman_collection.json"
SHOP = REPO / "examples" / "shop"

LINT_PYPROJECT = """\
[tool.ruff]
line-length = 100
target-version = "py311"

[tool.ruff.lint]
select = ["E", "F", "W", "I", "UP", "B", "SIM", "RUF", "PT"]
ignore = ["PT011"]

[tool.mypy]
strict = true
python_version = "3.11"
packages = ["{package}"]

[[tool.mypy.overrides]]
module = ["xdist.*", "docker.*", "testcontainers.*", "kubernetes.*"]
ignore_missing_imports = true

[tool.pytest-release.gates.lint]
targets = ["{package}"]

[tool.pytest-release.gates.lint.options.mypy]
targets = []  # mypy checks the packages of [tool.mypy], as bare `mypy` does

[tool.pytest-release.stages.lint-only]
gates = ["lint"]
"""

NEWMAN_PYPROJECT = """\
[tool.pytest-release.gates.newman]
collections = ["shop.postman_collection.json"]
newman = "{newman}"
env_vars = {{ baseUrl = "{base_url}" }}

[tool.pytest-release.stages.api]
gates = ["newman"]
"""

# pytest without this plugin and without tests (exit code 5): its fixed cost on this machine.
STARTUP = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:release"]

TINY_MODULE = '''"""A small typed module (quick mode)."""

from __future__ import annotations


def mean(values: list[float]) -> float:
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)


def scale(values: list[float], factor: float) -> list[float]:
    return [v * factor for v in values]
'''


# -- lint -------------------------------------------------------------------------------------
def lint_tree(root: Path, quick: bool) -> str:
    """Write the project to lint; returns the package name."""
    root.mkdir(parents=True, exist_ok=True)
    if quick:
        package = "tinypkg"
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("", encoding="utf-8")
        for n in range(3):
            (root / package / f"mod{n}.py").write_text(TINY_MODULE, encoding="utf-8")
    else:
        package = "pytest_release"
        archive = subprocess.run(
            ["git", "archive", "HEAD", package], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    (root / "pyproject.toml").write_text(LINT_PYPROJECT.format(package=package), encoding="utf-8")
    return package


def clean_caches(root: Path) -> None:
    for name in (".ruff_cache", ".mypy_cache", ".pytest-release", "reports"):
        shutil.rmtree(root / name, ignore_errors=True)


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise BenchmarkError(f"{name} is not installed: pip install -e '.[test]'")
    return found


def bare_commands(package: str) -> list[list[str]]:
    return [
        [tool("ruff"), "check", package],
        [tool("ruff"), "format", "--check", package],
        [tool("mypy")],
    ]


def run_sequential(cmds: Sequence[Sequence[str]], root: Path) -> float:
    start = time.perf_counter()
    for cmd in cmds:
        timed_run(cmd, root, ok_codes=(0, 1))  # 1: findings
    return time.perf_counter() - start


def run_concurrent(cmds: Sequence[Sequence[str]], root: Path) -> float:
    start = time.perf_counter()
    procs = [
        subprocess.Popen(list(cmd), cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cmd in cmds
    ]
    try:
        for proc, cmd in zip(procs, cmds, strict=True):
            _, err = proc.communicate(timeout=900)
            if proc.returncode not in (0, 1):
                raise BenchmarkError(f"{' '.join(cmd)} exited with {proc.returncode}: {err!r}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return time.perf_counter() - start


def gate_cmd(stage: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--stage={stage}",
        "--release-id=bench",
    ]


def check_consistent(root: Path, package: str) -> int:
    """Run the bare tools and the gate once; the gate must pass exactly when every tool
    passes (so a gate that did not run its tools cannot be timed as fast).  Returns the
    number of tools that reported findings."""
    clean_caches(root)
    codes = []
    for cmd in bare_commands(package):
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
        if done.returncode not in (0, 1):
            raise BenchmarkError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr}")
        codes.append(done.returncode)
    clean_caches(root)
    gate = subprocess.run(gate_cmd("lint-only"), cwd=root, capture_output=True, text=True)
    expected = 1 if any(codes) else 0
    if gate.returncode != expected or "passed" not in gate.stdout + gate.stderr:
        raise BenchmarkError(
            f"the lint gate exited with {gate.returncode} but the bare tools exited with "
            f"{codes} (expected the gate to exit with {expected}):\n{gate.stdout[-2000:]}"
        )
    return sum(codes)


def lint_variants(root: Path, package: str) -> dict[str, Callable[[], float]]:
    cmds = bare_commands(package)
    gate = gate_cmd("lint-only")

    def cold(run: Callable[[], float]) -> Callable[[], float]:
        def measure() -> float:
            clean_caches(root)
            return run()

        return measure

    def warm(run: Callable[[], float]) -> Callable[[], float]:
        def measure() -> float:
            run()  # untimed: fills this variant's caches whatever ran before
            return run()

        return measure

    def gate_run() -> float:
        return timed_run(gate, root, ok_codes=(0, 1))

    return {
        "bare sequential, cold": cold(lambda: run_sequential(cmds, root)),
        "bare concurrent, cold": cold(lambda: run_concurrent(cmds, root)),
        "lint gate, cold": cold(gate_run),
        "bare sequential, warm": warm(lambda: run_sequential(cmds, root)),
        "bare concurrent, warm": warm(lambda: run_concurrent(cmds, root)),
        "lint gate, warm": warm(gate_run),
        "pytest start-up alone": lambda: timed_run(STARTUP, root, ok_codes=(0, 5)),
    }


# -- newman ----------------------------------------------------------------------------------
def newman_binary() -> str:
    local = REPO / "node_modules" / ".bin" / "newman"
    if local.exists():
        return str(local)
    found = shutil.which("newman")
    if found is None:
        raise BenchmarkError(
            "newman is not installed: run `bash scripts/install-newman.sh` (npm install newman@6)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(f"the shop exited with {proc.returncode} before it was healthy")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchmarkError(f"the shop on 127.0.0.1:{port} was not healthy after {timeout:g}s")


def newman_variants(root: Path, base_url: str) -> dict[str, Callable[[], float]]:
    newman = newman_binary()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(COLLECTION, root / COLLECTION.name)
    (root / "pyproject.toml").write_text(
        NEWMAN_PYPROJECT.format(newman=newman, base_url=base_url), encoding="utf-8"
    )
    bare = [
        newman,
        "run",
        COLLECTION.name,
        "--env-var",
        f"baseUrl={base_url}",
        "-r",
        "json",
        "--reporter-json-export",
        "bare-report.json",
    ]
    gate = gate_cmd("api")
    return {
        "bare newman run": lambda: timed_run(bare, root),
        "newman gate": lambda: timed_run(gate, root),
        "pytest start-up alone": lambda: timed_run(STARTUP, root, ok_codes=(0, 5)),
    }


# -- main ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    out = out_dir(args)
    rounds = reps(args, full=5, quick=1)
    figure = Figure(
        "tool_gates",
        command_line("tool_gates.py", sys.argv[1:] if argv is None else argv),
        args.quick,
    )
    work = Path(tempfile.mkdtemp(prefix="pytest-release-bench-tools-"))
    shop: subprocess.Popen[bytes] | None = None
    try:
        package = lint_tree(work / "lint", args.quick)
        files = len(list((work / "lint" / package).rglob("*.py")))
        lines = sum(
            len(f.read_text(encoding="utf-8").splitlines())
            for f in (work / "lint" / package).rglob("*.py")
        )
        print(f"tool gates: lint on {package} ({files} files, {lines} lines), {rounds} rounds")
        with_findings = check_consistent(work / "lint", package)
        lint_times = interleaved(lint_variants(work / "lint", package), rounds)

        port = free_port()
        env = {**os.environ, "PORT": str(port)}
        shop = subprocess.Popen(
            [PYTHON, "-m", "shop"],
            cwd=SHOP,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(port, shop)
        variants = newman_variants(work / "newman", f"http://127.0.0.1:{port}")
        if not args.quick:
            for run in variants.values():
                run()  # warm-up: node's and Python's files in the page cache
        newman_times = interleaved(variants, rounds)
    finally:
        if shop is not None:
            shop.terminate()
            try:
                shop.wait(10)
            except subprocess.TimeoutExpired:
                shop.kill()
                shop.wait()
        shutil.rmtree(work, ignore_errors=True)

    lint = figure.table(
        f"Lint: ruff check + ruff format --check + mypy --strict on `{package}/` ({files} "
        f"files, {lines} lines); ratio to the bare tools run concurrently (as the gate runs "
        "them), same round and cache state",
        ["variant", "wall time", "ratio to bare concurrent", "ratio to bare sequential", "n"],
    )
    for name, values in lint_times.items():
        if name == "pytest start-up alone":
            lint.rows.append([name, fmt_spread(summarize(values)), "-", "-", str(rounds)])
            continue
        state = name.rsplit(", ", 1)[1]
        concurrent = lint_times[f"bare concurrent, {state}"]
        sequential = lint_times[f"bare sequential, {state}"]
        lint.rows.append(
            [
                name,
                fmt_spread(summarize(values)),
                fmt_ratio(summarize(paired_ratios(values, concurrent))),
                fmt_ratio(summarize(paired_ratios(values, sequential))),
                str(rounds),
            ]
        )
    newman = figure.table(
        "newman: the shop collection (6 requests, 13 assertions) against examples/shop on "
        "127.0.0.1; ratio to bare `newman run` with the same JSON reporter, same round",
        ["variant", "wall time", "ratio to bare newman", "n"],
    )
    for name, values in newman_times.items():
        ratio = summarize(paired_ratios(values, newman_times["bare newman run"]))
        newman.rows.append([name, fmt_spread(summarize(values)), fmt_ratio(ratio), str(rounds)])

    def minus(a: list[float], *others: list[float]) -> str:
        rest = [a[i] - sum(o[i] for o in others) for i in range(len(a))]
        return fmt_spread(summarize(rest))

    startup_lint = lint_times["pytest start-up alone"]
    startup_newman = newman_times["pytest start-up alone"]
    figure.notes += [
        "Decomposition (per round, median (p10-p90)): warm lint gate minus pytest's own "
        f"start-up: {minus(lint_times['lint gate, warm'], startup_lint)}; newman gate minus "
        "bare newman minus pytest start-up: "
        f"{minus(newman_times['newman gate'], newman_times['bare newman run'], startup_newman)}.",
    ]

    for state in ("cold", "warm"):
        ratio = summarize(
            paired_ratios(
                lint_times[f"lint gate, {state}"], lint_times[f"bare concurrent, {state}"]
            )
        )
        figure.summary.append(f"lint gate vs bare tools (concurrent), {state}: {fmt_ratio(ratio)}")
    figure.summary.append(
        "newman gate vs bare newman run: "
        + fmt_ratio(
            summarize(paired_ratios(newman_times["newman gate"], newman_times["bare newman run"]))
        )
    )

    def plus(a: list[float], b: list[float]) -> list[float]:
        return [x + y for x, y in zip(a, b, strict=True)]

    # The goal of the gates: a gate costs the bare tool plus pytest's own start-up, no more.
    for state in ("cold", "warm"):
        bound = plus(lint_times[f"bare concurrent, {state}"], startup_lint)
        ratio = summarize(paired_ratios(lint_times[f"lint gate, {state}"], bound))
        figure.summary.append(
            f"lint gate vs bare tools (concurrent) + pytest start-up, {state}: {fmt_ratio(ratio)}"
        )
    bound = plus(newman_times["bare newman run"], startup_newman)
    figure.summary.append(
        "newman gate vs bare newman run + pytest start-up: "
        + fmt_ratio(summarize(paired_ratios(newman_times["newman gate"], bound)))
    )
    figure.notes += [
        "Cold: `.ruff_cache`, `.mypy_cache` and the gate's `.pytest-release/cache/lint` removed "
        "before the run. Warm: the same variant ran just before (untimed). A warm gate reuses "
        "its cached results (the key hashes the sources, configuration, tool versions and "
        "installed distributions) and runs no tool; bare warm runs use ruff's and mypy's caches.",
        "The gate's time includes pytest's start-up, collection, the JUnit report and the "
        "ledger; the bare variants are only the tools.",
        "newman: neither newman nor the gate caches a run, so every run is cold as far as "
        "newman is concerned; each variant ran once untimed first (page cache warm).",
    ]
    figure.notes.append(
        f"{with_findings} of the 3 tools reported findings on this tree (the gate's exit code "
        "was checked against the bare tools' before timing)."
    )
    if args.quick:
        figure.notes.append("--quick: a generated 3-module package instead of pytest_release/.")
    figure.raw = {"lint_s": lint_times, "newman_s": newman_times, "lint_files": files}
    figure.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

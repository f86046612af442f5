"""Run a lint gate's tools (concurrently, each once) and cache their results.

A tool's result is reused while its cache key is unchanged.  The key covers:

* the tool, its full command line (resolved executable, adapter flags, user args,
  targets) and its ``--version`` output;
* environment variables the tool reads (``RUFF_*``, ``MYPY*``...);
* the installed distributions of the interpreter running pytest (names and versions
  from ``*.dist-info``: plugins and stubs change results);
* the content of every Python file (``.py``, ``.pyi``, ``.ipynb``, ``.pyx``) and of every
  tool configuration file (``pyproject.toml``, ``setup.cfg``, ``tox.ini``, ``.flake8``,
  ``ruff.toml``, ``mypy.ini``...) under the tool's targets, of the configuration files
  in the rootdir, and of any file named by a user argument.

Directories that hold no checked source are not hashed: hidden ones (``.git``,
``.venv``, ``.mypy_cache``), ``__pycache__``, ``node_modules``, ``site-packages``,
``*.egg-info`` and virtualenvs (a directory with ``pyvenv.cfg``).  Configuration in
parent directories of the rootdir and in the user's home is not part of the key.
Only results of tools that ran normally are cached; a missing, crashed or timed-out
tool runs again next time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_release.gates.lint.cache import (
    CACHE_DIR,
    LintCache,
    cache_key,
    files_digest,
    installed_distributions,
)
from pytest_release.gates.lint.config import LintGateConfig
from pytest_release.gates.lint.model import ToolResult
from pytest_release.gates.lint.tools import TOOLS, ParseError, ToolOutput, ToolPlan
from pytest_release.system.processes import ProcessGroups
from pytest_release.system.processes import run_tool as run_with_deadline

# Colour codes would break parsing; tools honour these to force colour on.
_COLOUR_VARS = ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE", "MYPY_FORCE_COLOR")
_TAIL_LINES = 30
_TAIL_CHARS = 4000
_VERSION_TIMEOUT = 60.0

Redact = Callable[[str], str]


def _no_redaction(text: str) -> str:
    return text


# -- locating the program ------------------------------------------------------------------


def search_path() -> str:
    """Where default executables are looked up: the scripts directory of the interpreter
    running pytest (its venv's ``bin``), then ``PATH``."""
    dirs = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    dirs.extend(os.environ.get("PATH", "").split(os.pathsep))
    seen: list[str] = []
    for entry in dirs:
        if entry and entry not in seen:
            seen.append(entry)
    return os.pathsep.join(seen)


def resolve_program(program: str, root: Path) -> str | None:
    """Absolute path of ``program`` (a name looked up like a shell would, or a path
    relative to the rootdir), None when it does not exist or is not executable."""
    if os.sep in program or (os.altsep and os.altsep in program):
        candidate = Path(program) if Path(program).is_absolute() else root / program
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=search_path())


def plan_tool(gate_name: str, gate: LintGateConfig, tool: str, root: Path) -> ToolPlan:
    spec = TOOLS[tool]
    options = gate.tool_options(tool)
    targets = gate.tool_targets(tool) if spec.uses_targets else ()
    command = options.command or (spec.executable,)
    extra_files = tuple(_file_args(options.args, root))
    resolved = resolve_program(command[0], root)
    key = f"gates.{gate_name}.options.{tool}.command"
    if resolved is None:
        if options.command:
            problem = (
                f"{tool}: the configured command {shlex.join(command)!r} cannot run: "
                f"{command[0]!r} is not an executable file or on PATH ({key}). "
                f"Fix the command, or remove it and install the tool: {spec.install_hint}"
            )
        else:
            problem = (
                f"{tool}: {spec.executable!r} is not installed: it is neither next to the "
                f"Python running pytest ({sysconfig.get_path('scripts')}) nor on PATH. "
                f"Install it: {spec.install_hint}; or set {key} to how it is run here."
            )
        return ToolPlan(spec, tuple(command), (), targets, extra_files, problem, "missing")
    prefix = (resolved, *command[1:])
    missing = [t for t in targets if not (root / t).exists()]
    if missing:
        where = (
            f"gates.{gate_name}.options.{tool}.targets"
            if options.targets is not None
            else f"gates.{gate_name}.targets"
        )
        problem = (
            f"{tool}: target(s) {', '.join(repr(t) for t in missing)} do not exist under the "
            f"rootdir {root}; fix {where} (paths are relative to the rootdir)"
        )
        return ToolPlan(spec, prefix, (), targets, extra_files, problem)
    argv = (*prefix, *spec.fixed_args, *options.args, *targets)
    return ToolPlan(spec, prefix, argv, targets, extra_files)


def _file_args(args: Iterable[str], root: Path) -> Iterator[str]:
    """Arguments (or ``--opt=value`` values) naming existing files: config files."""
    for arg in args:
        for value in (arg, arg.split("=", 1)[-1]):
            if value and not value.startswith("-") and (root / value).is_file():
                yield value
                break


# -- running -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    error: str = ""


def tool_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _COLOUR_VARS}
    env["NO_COLOR"] = "1"
    return env


def execute(
    argv: tuple[str, ...], root: Path, timeout: float, processes: ProcessGroups
) -> Execution:
    start = time.perf_counter()
    try:
        run = run_with_deadline(argv, root, timeout, env=tool_environment(), running=processes)
    except OSError as exc:
        return Execution(None, "", "", time.perf_counter() - start, error=str(exc))
    return Execution(run.returncode, run.stdout, run.stderr, run.duration, run.timed_out)


def tool_version(
    prefix: tuple[str, ...], root: Path, timeout: float, processes: ProcessGroups
) -> str | None:
    """The first line ``<tool> --version`` prints, None when it fails."""
    result = execute((*prefix, "--version"), root, min(timeout, _VERSION_TIMEOUT), processes)
    if result.exit_code != 0:
        return None
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-_TAIL_LINES:]
    joined = "\n".join(lines)
    return joined[-_TAIL_CHARS:]


def evaluate(
    plan: ToolPlan, run: Execution, root: Path, version: str, redact: Redact
) -> ToolResult:
    """Turn a finished tool run into a result: findings, or why the tool did not work."""
    spec = plan.spec
    command = shlex.join(plan.argv)
    base = ToolResult(
        tool=spec.name,
        outcome="ok",
        argv=tuple(redact(a) for a in plan.argv),
        exit_code=run.exit_code,
        version=version,
        duration=round(run.duration, 3),
        stderr_tail=redact(tail(run.stderr)),
        stdout_tail=redact(tail(run.stdout)),
    )
    if run.error:
        return replace(
            base,
            outcome="crashed",
            message=redact(f"{spec.name}: could not start `{command}`: {run.error}"),
        )
    if run.timed_out:
        return replace(
            base,
            outcome="timeout",
            message=redact(
                f"{spec.name}: `{command}` did not finish within {run.duration:.0f}s and was "
                "killed; raise the gate's timeout or check targets"
            ),
        )
    assert run.exit_code is not None
    try:
        findings = spec.parse(ToolOutput(run.stdout, run.stderr, run.exit_code, root))
        problem = ""
    except ParseError as exc:
        findings, problem = [], str(exc)
    code = run.exit_code
    failing = [f for f in findings if f.fails]
    if not problem and (code == 0 or (code in spec.finding_codes and failing)):
        return replace(base, findings=tuple(findings))
    if code < 0:
        what = f"was killed by signal {-code}"
    elif problem:
        what = f"exited with code {code} and its output could not be read ({problem})"
    else:
        expected = ", ".join(str(c) for c in sorted(spec.finding_codes))
        what = (
            f"exited with code {code} without reporting a finding "
            f"(expected 0 = clean, or {expected} with findings)"
        )
    lines = [f"{spec.name}: `{command}` {what}."]
    if "No module named" in run.stderr:
        lines.append(f"The tool is not installed for that interpreter: {spec.install_hint}")
    if run.stderr.strip():
        lines += ["stderr:", tail(run.stderr)]
    if run.stdout.strip() and (problem or not run.stderr.strip()):
        lines += ["stdout:", tail(run.stdout)]
    return replace(base, outcome="crashed", message=redact("\n".join(lines)))


# -- the gate's run ------------------------------------------------------------------------


def run_tool(
    gate_name: str,
    plan: ToolPlan,
    root: Path,
    timeout: float,
    cache: LintCache | None,
    digests: Mapping[tuple[str, ...], str],
    distributions: str,
    processes: ProcessGroups,
    redact: Redact,
) -> ToolResult:
    spec = plan.spec
    if plan.problem:
        return ToolResult(
            tool=spec.name,
            outcome=plan.problem_outcome,
            message=redact(plan.problem),
            argv=tuple(redact(a) for a in plan.prefix),
        )
    version = tool_version(plan.prefix, root, timeout, processes)
    key = ""
    if cache is not None and spec.cacheable and version is not None:
        files = digests[(*plan.targets, "\0", *plan.extra_files)]
        key = cache_key(plan, version, files, distributions, os.environ)
        hit = cache.get(gate_name, spec.name, key)
        if hit is not None:
            return hit
    run = execute(plan.argv, root, timeout, processes)
    result = evaluate(plan, run, root, version or "unknown", redact)
    if key and cache is not None and result.ok:
        cache.put(gate_name, spec.name, key, replace(result, cache_key=key))
    return replace(result, cache_key=key)


def run_gate(
    gate_name: str,
    gate: LintGateConfig,
    root: Path,
    *,
    use_cache: bool = True,
    redact: Redact = _no_redaction,
) -> dict[str, ToolResult]:
    """Run every tool of the gate concurrently; tool name -> result."""
    plans = [plan_tool(gate_name, gate, tool, root) for tool in gate.tools]
    cache = LintCache(root / CACHE_DIR) if gate.cache and use_cache else None
    digests: dict[tuple[str, ...], str] = {}
    distributions = ""
    if cache is not None:
        distributions = installed_distributions()
        for plan in plans:
            key = (*plan.targets, "\0", *plan.extra_files)
            if plan.spec.cacheable and not plan.problem and key not in digests:
                digests[key] = files_digest(root, plan.targets, plan.extra_files)
    processes = ProcessGroups()
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="lint") as pool:
        futures = {
            plan.spec.name: pool.submit(
                run_tool,
                gate_name,
                plan,
                root,
                gate.timeout,
                cache,
                digests,
                distributions,
                processes,
                redact,
            )
            for plan in plans
        }
        try:
            return {name: future.result() for name, future in futures.items()}
        except BaseException:
            processes.kill_all()
            raise

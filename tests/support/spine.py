"""Helpers for the spine's pytester-based tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.junit import read_cases, stage_report
from tests.support.pipelines import CI, UNIT_TEST

XDIST_MODES = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


def project(pytester: pytest.Pytester, toml: str = "", **files: str) -> Path:
    """A project with ``[tool.pytest-release]`` = ``toml`` and the given test files."""
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\n"
        'markers = ["slow: slow tests"]\n\n'
        "[tool.pytest-release]\n" + nest_tables(textwrap.dedent(toml))
    )
    for name, content in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return pytester.path


def nest_tables(toml: str) -> str:
    """Write ``[stages.x]`` as ``[tool.pytest-release.stages.x]`` (tests read better)."""
    lines = []
    for line in toml.splitlines():
        stripped = line.strip()
        if stripped.startswith("[["):
            line = "[[tool.pytest-release." + stripped[2:]
        elif stripped.startswith("["):
            line = "[tool.pytest-release." + stripped[1:]
        lines.append(line)
    return "\n".join(lines) + "\n"


def run_stage(
    pytester: pytest.Pytester, stage: str, *args: str, release: str = "r1"
) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        f"--stage={stage}", f"--release-id={release}", "-p", "no:cacheprovider", *args
    )


def run_ci_with_github_sha(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sha: str
) -> pytest.RunResult:
    """Stage ``ci`` (a unit gate of one passing test) run with ``$GITHUB_SHA`` = ``sha``
    and no ``--release-id``: the stage takes its release id from the environment."""
    project(pytester, CI, **UNIT_TEST)
    monkeypatch.setenv("GITHUB_SHA", sha)
    return pytester.runpytest_subprocess("--stage=ci", "-p", "no:cacheprovider")


def start_stage(root: Path, stage: str, *args: str, release: str = "r1") -> subprocess.Popen[str]:
    """``run_stage`` in a process of its own, for a test that signals or races it; its
    output (stdout and stderr) is read as text."""
    command = [sys.executable, "-m", "pytest", f"--stage={stage}", f"--release-id={release}"]
    command += ["-p", "no:cacheprovider", *args]
    return subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@contextmanager
def stage_process(
    root: Path, stage: str, *args: str, release: str = "r1"
) -> Iterator[subprocess.Popen[str]]:
    """``start_stage``, killed (by its PID) if it still runs when the block ends."""
    process = start_stage(root, stage, *args, release=release)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_while_running(
    process: subprocess.Popen[str],
    reached: Callable[[], bool],
    what: str,
    timeout: float = 180,
    poll: float = 0.02,
) -> None:
    """Wait until ``reached()`` (e.g. a file a test item writes) while ``process`` runs,
    asking every ``poll`` seconds; fail with its output when it ends first, or when
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not reached():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(poll)


def wait_for_file(process: subprocess.Popen[str], path: Path, timeout: float = 180) -> None:
    wait_while_running(process, path.exists, f"{path.name} appearing", timeout)


def stage_cases(root: Path, stage: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """JUnit test case name -> (outcome, message, properties) of the report the stage
    ``stage`` wrote in ``root/reports``; outcome is passed, failure, error or skipped."""
    return {
        case.name: (case.outcome, case.details, case.properties)
        for case in read_cases(stage_report(root, stage))
    }


def assert_usage_error(result: pytest.RunResult, *lines: str) -> None:
    """A usage error (exit 4) with ``lines`` (fnmatch patterns) on stderr, and no
    INTERNALERROR or traceback anywhere."""
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "INTERNALERROR" not in output, output
    assert "Traceback" not in output, output
    result.stderr.fnmatch_lines(list(lines))


def run_teardown(
    root: Path, *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_release.canary.teardown ROOT ARGS`` (what CI runs after the
    stages), its output read as text."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_release.canary.teardown", str(root), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_refused_while_abandoned(
    pytester: pytest.Pytester, pid: int, new_image: str, release_image: str
) -> None:
    """While release r1's rollout stage (process ``pid``, dead) lies abandoned, every other
    rollout stage, of r1 (on ``release_image``) or of r2 (on ``new_image``), is a usage
    error naming it, until a rollback reconciles it."""
    for refused in (
        run_stage(pytester, "canary-1", f"--image={new_image}", release="r2"),
        run_stage(pytester, "canary-2", f"--image={release_image}"),
        run_stage(pytester, "rollback", release="r2"),
    ):
        assert refused.ret == pytest.ExitCode.USAGE_ERROR, refused.stdout.str()
        assert "a rollout stage was abandoned" in refused.stderr.str()
        assert f"pid {pid}" in refused.stderr.str()


def ledger_runs(root: Path) -> list[dict[str, Any]]:
    data = json.loads((root / ".pytest-release" / "ledger.json").read_text())
    runs: list[dict[str, Any]] = data["runs"]
    return runs


def events(path: Path) -> list[list[Any]]:
    """Lines ``json`` appended by test items (see ``RECORDER``)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# A conftest that gives test files a `record(name)` fixture appending start/end events.
RECORDER = """
import json, os, time
import pytest

LOG = os.path.join(os.path.dirname(__file__), "events.jsonl")

@pytest.fixture
def record(request):
    def write(kind):
        with open(LOG, "a") as handle:
            handle.write(json.dumps([kind, request.node.name, time.time(),
                                     os.environ.get("PYTEST_XDIST_WORKER", "main")]) + "\\n")
    write("start")
    yield write
    write("end")
"""


def github_outputs(path: Path) -> dict[str, str]:
    """The runner's reading of a ``GITHUB_OUTPUT`` file (``name=value`` and
    ``name<<DELIM`` ... ``DELIM``); a later value of a name replaces an earlier one."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        heredoc = re.fullmatch(r"([^=<]+)<<(.+)", line)
        if heredoc:
            name, delimiter = heredoc.groups()
            body = []
            while lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(body)
        else:
            name, _, value = line.partition("=")
            values[name] = value
    return values

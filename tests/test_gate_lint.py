"""The ``lint`` gate: real ruff, mypy, black, isort, flake8 and bandit on pytester projects.

Only pip-audit is replaced by a fake (a script printing pip-audit's documented JSON):
the real tool needs a vulnerability service this machine cannot reach.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_release.config.release import load_release_config
from pytest_release.errors import ReleaseConfigError
from pytest_release.gates import builtin_gate_kinds
from pytest_release.gates.lint.config import LintGateConfig
from pytest_release.gates.lint.runner import search_path
from pytest_release.gates.lint.tools import (
    ParseError,
    ToolOutput,
    first_changed_lines,
    parse_black,
    parse_mypy,
    parse_pip_audit,
    parse_ruff_format,
)
from tests.support.junit import Case, read_cases, stage_report
from tests.support.spine import ledger_runs, project, run_stage

LINT_ONLY = """
[stages.check]
gates = ["lint"]

[gates.lint]
kind = "lint"
"""

UNUSED_IMPORT = "import os\n\n\ndef answer() -> int:\n    return 42\n"
CLEAN = 'def greet(name: str) -> str:\n    return "hello " + name\n'


def lint_project(pytester: pytest.Pytester, extra_toml: str = "", **files: str) -> Path:
    """A project whose stage ``check`` has only the lint gate (``kind = "lint"``)."""
    root = project(pytester, LINT_ONLY + textwrap.dedent(extra_toml), **files)
    with (root / "pyproject.toml").open("a") as handle:
        handle.write("\n")  # tests append tables
    return root


def program(name: str) -> str:
    path = shutil.which(name, path=search_path())
    assert path is not None, f"{name} is not installed: pip install -e '.[test]'"
    return path


def script(root: Path, name: str, body: str) -> str:
    """An executable shell script in the project (a wrapper or a stand-in tool)."""
    path = root / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return f"./{name}"


def counting_wrapper(root: Path, tool: str) -> str:
    """Runs the real ``tool``, appending a line to ``calls.log`` per lint run
    (``--version`` calls, made for the cache key, are not counted)."""
    return script(
        root,
        f"count-{tool}.sh",
        f"""\
        if [ "$1" != "--version" ]; then echo "$$ $*" >> "{root}/calls.log"; fi
        exec {program(tool)} "$@"
        """,
    )


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def calls(root: Path) -> list[str]:
    log = root / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def cases(root: Path, stage: str = "check") -> dict[str, Case]:
    """JUnit cases by ``<tool>::<name>``."""
    return {
        f"{c.classname.rsplit('.', 1)[-1]}::{c.name}": c
        for c in read_cases(stage_report(root, stage))
    }


# -- findings --------------------------------------------------------------------------------


def test_ruff_violation_fails_its_file_item_with_location(
    pytester: pytest.Pytester, xdist: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    root = lint_project(
        pytester,
        """
        tools = ["ruff-check"]
        """,
        **{"src/app.py": UNUSED_IMPORT, "src/clean.py": CLEAN},
    )
    result = run_stage(pytester, "check", *xdist)
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*src/app.py:1:8 F401 `os` imported but unused*"])
    # The GitHub annotation points at the finding.
    result.stdout.fnmatch_lines(
        ["::error file=src/app.py,line=1,title=*src/app.py:1:8 F401 `os` imported but unused*"]
    )
    got = cases(root)
    assert set(got) == {"ruff-check::status", "ruff-check::src/app.py"}
    item = got["ruff-check::src/app.py"]
    assert (item.file, item.line) == ("src/app.py", "1")
    assert item.outcome == "failure"
    assert "src/app.py:1:8 F401" in item.text
    status = got["ruff-check::status"]
    assert status.outcome == "passed"
    props = status.properties
    assert props["lint_exit_code"] == "1"
    assert props["lint_findings"] == "1"
    assert props["lint_version"].startswith("ruff ")


def test_clean_project_passes_with_default_tools(pytester: pytest.Pytester) -> None:
    root = lint_project(pytester, **{"src/clean.py": CLEAN, "src/other.py": "VALUE = 1\n"})
    result = run_stage(pytester, "check")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=3)
    assert set(cases(root)) == {"ruff-check::status", "ruff-format::status", "mypy::status"}
    result.stdout.fnmatch_lines(["*release stage check: passed*"])


def test_format_check_detects_unformatted_file(pytester: pytest.Pytester) -> None:
    root = lint_project(
        pytester,
        """
        tools = ["ruff-format"]
        """,
        **{"src/ugly.py": "def f( a ):\n    return a+1\n", "src/clean.py": CLEAN},
    )
    result = run_stage(pytester, "check")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*src/ugly.py:1:*unformatted File would be reformatted*",
            "*ruff-format: 1 problem in src/ugly.py; fix with `ruff format src/ugly.py`*",
        ]
    )
    item = cases(root)["ruff-format::src/ugly.py"]
    assert (item.file, item.line) == ("src/ugly.py", "1")


def test_mypy_error_is_reported_with_code_and_column(pytester: pytest.Pytester) -> None:
    root = lint_project(
        pytester,
        """
        tools = ["mypy"]
        """,
        **{
            "src/typed.py": "def name(x: int) -> str:\n    return x\n",
            "src/clean.py": CLEAN,
        },
    )
    result = run_stage(pytester, "check")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ['*src/typed.py:2:12 return-value Incompatible return value type (got "int", expected*']
    )
    item = cases(root)["mypy::src/typed.py"]
    assert (item.file, item.line) == ("src/typed.py", "2")


def test_optional_tools_black_isort_flake8_bandit(pytester: pytest.Pytester) -> None:
    source = (
        'import sys\nimport os\nimport subprocess\n\nsubprocess.call("ls", shell=True)\nvalue=1\n'
    )
    root = lint_project(
        pytester,
        """
        tools = ["black", "isort", "flake8", "bandit"]
        targets = ["src"]
        """,
        **{"src/risky.py": source, "src/clean.py": CLEAN},
    )
    result = run_stage(pytester, "check")
    got = cases(root)
    statuses = {name: c.outcome for name, c in got.items() if name.endswith("::status")}
    assert statuses == dict.fromkeys(
        ["black::status", "isort::status", "flake8::status", "bandit::status"], "passed"
    ), statuses
    assert {n for n in got if not n.endswith("::status")} == {
        "black::src/risky.py",
        "isort::src/risky.py",
        "flake8::src/risky.py",
        "bandit::src/risky.py",
    }
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines_random(
        [
            "*src/risky.py:6:1 black file would be reformatted*",
            "*src/risky.py:1:1 isort Imports are incorrectly sorted and/or formatted*",
            "*src/risky.py:1:1 F401 'sys' imported but unused*",
            "*src/risky.py:6:6 E225 missing whitespace around operator*",
            "*src/risky.py:5:1 B602 subprocess call with shell=True*",
        ]
    )
    # black's first changed line, read from its diff.
    assert got["black::src/risky.py"].line == "6"
    assert got["bandit::src/risky.py"].line == "3"  # B404, import subprocess


def test_pip_audit_findings_become_package_items(pytester: pytest.Pytester) -> None:
    root = lint_project(pytester, **{"src/clean.py": CLEAN})
    report = {
        "dependencies": [
            {"name": "safe", "version": "1.0", "vulns": []},
            {
                "name": "requests",
                "version": "2.19.0",
                "vulns": [
                    {
                        "id": "PYSEC-2018-28",
                        "fix_versions": ["2.20.0"],
                        "aliases": ["CVE-2018-18074"],
                        "description": "Requests sends Authorization headers on redirects.",
                    }
                ],
            },
        ],
        "fixes": [],
    }
    (root / "audit.json").write_text(json.dumps(report))
    # FAKE pip-audit: the real one needs an advisory service this machine cannot reach.
    fake = script(
        root,
        "fake-pip-audit.sh",
        f"""\
        if [ "$1" = "--version" ]; then echo "pip-audit 2.7.3 (fake)"; exit 0; fi
        cat {root}/audit.json; exit 1
        """,
    )
    with (root / "pyproject.toml").open("a") as handle:
        handle.write(
            'tools = ["pip-audit"]\n'
            "[tool.pytest-release.gates.lint.options.pip-audit]\n"
            f'command = ["{fake}"]\n'
        )
    result = run_stage(pytester, "check")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*requests==2.19.0 PYSEC-2018-28 requests 2.19.0 is vulnerable (also "
            "CVE-2018-18074); fixed in: 2.20.0.*"
        ]
    )
    assert "pip-audit::requests==2.19.0" in cases(root)


# -- tools that do not work ------------------------------------------------------------------


def test_missing_tool_fails_status_with_install_hint(pytester: pytest.Pytester) -> None:
    root = lint_project(
        pytester,
        """
        tools = ["ruff-check", "mypy"]

        [gates.lint.options.ruff-check]
        command = ["ruff-is-not-installed-here"]

        [gates.lint.options.mypy]
        command = ["{python}", "-m", "no_such_mypy_module"]
        """.replace("{python}", sys.executable),
        **{"src/app.py": UNUSED_IMPORT},
    )
    result = run_stage(pytester, "check")
    assert result.ret == 1
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "'ruff-is-not-installed-here' is not an executable file or on PATH" in out
    assert "pip install ruff  (or pip install 'pytest-release[lint]')" in out
    assert "ruff-check is not installed or cannot be started" in out
    # A program that starts but whose tool module is missing: exit code, stderr, hint.
    assert "No module named no_such_mypy_module" in out
    assert "The tool is not installed for that interpreter: pip install mypy" in out
    got = cases(root)
    assert got["ruff-check::status"].properties["lint_outcome"] == "missing"
    assert got["mypy::status"].properties["lint_outcome"] == "crashed"


def test_crashed_tool_fails_status_with_exit_code_and_stderr(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "tok-3f9a7c1e5b2d"
    monkeypatch.setenv("LINT_TOKEN", token)
    root = lint_project(
        pytester,
        """
        tools = ["ruff-check", "mypy"]
        """,
        **{"src/app.py": UNUSED_IMPORT},
    )
    garbage = script(root, "garbage.sh", 'echo "this is not json"; exit 1\n')
    crash = script(
        root,
        "crash.sh",
        'if [ "$1" = "--version" ]; then echo "mypy 0 (stand-in)"; exit 0; fi\n'
        'echo "internal error: token $LINT_TOKEN rejected" >&2; exit 3\n',
    )
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.pytest-release]\n", '[tool.pytest-release]\nsecrets = ["LINT_TOKEN"]\n'
        )
        + "[tool.pytest-release.gates.lint.options.ruff-check]\n"
        + f'command = ["{garbage}"]\n'
        + "[tool.pytest-release.gates.lint.options.mypy]\n"
        + f'command = ["{crash}"]\n'
    )
    result = run_stage(pytester, "check")
    assert result.ret == 1
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*ruff-check: `*garbage.sh check --output-format=json --no-fix .` exited with "
            "code 1 and its output could not be read (ruff check did not print JSON*",
            "*this is not json*",
            "*mypy: `*crash.sh --show-column-numbers * .` exited with code 3 without "
            "reporting a finding (expected 0 = clean, or 1, 2 with findings).*",
            "*internal error: token *** rejected*",
            "*mypy failed to run (exit code 3)*",
        ]
    )
    assert token not in result.stdout.str()
    report = (root / "reports" / "check.xml").read_text()
    assert token not in report
    assert "internal error: token *** rejected" in report


def test_tool_over_its_timeout_is_killed_and_fails(pytester: pytest.Pytester) -> None:
    root = lint_project(
        pytester,
        """
        tools = ["flake8"]
        timeout = "1s"
        """,
        **{"src/app.py": CLEAN},
    )
    hang = script(
        root,
        "hang.sh",
        f"""\
        if [ "$1" = "--version" ]; then echo "flake8 0 (stand-in)"; exit 0; fi
        sleep 300 &
        echo $! > {root}/child.pid
        wait
        """,
    )
    with (root / "pyproject.toml").open("a") as handle:
        handle.write(f'[tool.pytest-release.gates.lint.options.flake8]\ncommand = ["{hang}"]\n')
    try:
        result = run_stage(pytester, "check")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*did not finish within 1s and was killed*", "*timed out*"])
        # The whole process group was killed: the wrapper's child too.
        assert not alive(int((root / "child.pid").read_text()))
    finally:
        pid_file = root / "child.pid"
        if pid_file.exists() and alive(pid := int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)


# -- once per session, cache -----------------------------------------------------------------


def test_each_tool_runs_once_per_session(pytester: pytest.Pytester, xdist: list[str]) -> None:
    root = lint_project(
        pytester,
        """
        tools = ["ruff-check", "ruff-format"]
        cache = false
        """,
        **{"src/app.py": UNUSED_IMPORT, "src/b.py": "import sys\n", "src/c.py": CLEAN},
    )
    with (root / "pyproject.toml").open("a") as handle:
        for tool in ("ruff-check", "ruff-format"):
            wrapper = counting_wrapper(root, "ruff")
            handle.write(
                f'[tool.pytest-release.gates.lint.options.{tool}]\ncommand = ["{wrapper}"]\n'
            )
    result = run_stage(pytester, "check", *xdist)
    result.assert_outcomes(passed=2, failed=2)
    if xdist:
        result.stdout.fnmatch_lines(["*2 workers [[]4 items[]]*"])
    runs = calls(root)
    assert sorted(line.split(" ", 2)[1] for line in runs) == ["check", "format"], runs


def test_gate_duration_counts_the_tools_run_time(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    """The tools run at collection, before the gate's items: their run time belongs to the
    gate (issue 30: the lint gate reported 0.00 s for a 16 s session)."""
    root = lint_project(
        pytester,
        """
        tools = ["ruff-check"]
        cache = false
        """,
        **{"src/c.py": CLEAN},
    )
    slow = script(  # a slow linter: the real ruff after a second of start-up
        root, "slow-ruff.sh", f'[ "$1" = "--version" ] || sleep 1\nexec {program("ruff")} "$@"\n'
    )
    with (root / "pyproject.toml").open("a") as handle:
        handle.write(f'[tool.pytest-release.gates.lint.options.ruff-check]\ncommand = ["{slow}"]\n')
    result = run_stage(pytester, "check", *xdist)
    result.assert_outcomes(passed=1)
    status = cases(root)["ruff-check::status"].properties
    tool_seconds = float(status["lint_duration"])
    assert tool_seconds >= 1.0
    gate = ledger_runs(root)[-1]["gates"]["lint"]
    assert gate["duration"] >= tool_seconds, gate
    shown = re.search(r"gate lint: passed - .* in ([0-9.]+)s", result.stdout.str())
    assert shown is not None, result.stdout.str()
    assert float(shown[1]) >= tool_seconds


def test_cache_reuses_results_until_files_or_config_change(pytester: pytest.Pytester) -> None:
    root = lint_project(
        pytester,
        """
        tools = ["ruff-check"]
        """,
        **{"src/app.py": UNUSED_IMPORT, "src/clean.py": CLEAN},
    )
    wrapper = counting_wrapper(root, "ruff")
    with (root / "pyproject.toml").open("a") as handle:
        handle.write(
            f'[tool.pytest-release.gates.lint.options.ruff-check]\ncommand = ["{wrapper}"]\n'
        )

    def status_props() -> dict[str, str]:
        return cases(root)["ruff-check::status"].properties

    first = run_stage(pytester, "check")
    first.assert_outcomes(passed=1, failed=1)
    assert len(calls(root)) == 1
    assert status_props()["lint_cached"] == "false"

    # Unchanged tree: the result comes from the cache, the tool does not run.
    second = run_stage(pytester, "check")
    second.assert_outcomes(passed=1, failed=1)
    second.stdout.fnmatch_lines(["*src/app.py:1:8 F401 `os` imported but unused*"])
    assert len(calls(root)) == 1
    assert status_props()["lint_cached"] == "true"

    # Tool configuration changed (pyproject.toml): runs again, F401 is now ignored.
    with (root / "pyproject.toml").open("a") as handle:
        handle.write('[tool.ruff.lint]\nignore = ["F401"]\n')
    third = run_stage(pytester, "check")
    third.assert_outcomes(passed=1)
    assert len(calls(root)) == 2

    # A checked file changed: runs again and sees the new problem.
    (root / "src" / "app.py").write_text("print(undefined_name)\n")
    fourth = run_stage(pytester, "check")
    fourth.assert_outcomes(passed=1, failed=1)
    fourth.stdout.fnmatch_lines(["*src/app.py:1:7 F821 Undefined name `undefined_name`*"])
    assert len(calls(root)) == 3

    # --cache-clear bypasses the lint cache too.
    fifth = pytester.runpytest_subprocess("--stage=check", "--release-id=r1", "--cache-clear")
    fifth.assert_outcomes(passed=1, failed=1)
    assert len(calls(root)) == 4


# -- the gate in the stage -------------------------------------------------------------------


def test_failed_lint_gate_closes_the_next_gate(pytester: pytest.Pytester) -> None:
    root = project(
        pytester,
        """
        [stages.check]
        gates = ["lint", "unit"]

        [gates.lint]
        kind = "lint"
        tools = ["ruff-check"]
        targets = ["src"]
        """,
        **{"src/app.py": UNUSED_IMPORT, "tests/unit/test_u.py": "def test_u():\n    pass\n"},
    )
    result = run_stage(pytester, "check")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    unit = cases(root)["test_u::test_u"]
    assert unit.outcome == "skipped"
    result.stdout.fnmatch_lines(["*gate lint: failed*", "*gate unit: closed*"])


def test_unknown_tool_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    lint_project(pytester, 'tools = ["ruff-check", "rufff"]')
    result = run_stage(pytester, "check")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "gates.lint.tools = ['ruff-check', 'rufff']: Value error, unknown lint tool 'rufff'; "
        "allowed tools: ruff-check, ruff-format, mypy, black, isort, flake8, bandit, pip-audit"
    ) in result.stderr.str()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"tools": []}, "gates.lint.tools = []: Value error, list at least one lint tool"),
        (
            {"tools": ["mypy", "mypy"]},
            "gates.lint.tools = ['mypy', 'mypy']: Value error, tool(s) listed twice: mypy",
        ),
        (
            {"tools": ["ruff-check"], "options": {"mypy": {"args": ["--strict"]}}},
            "options given for tool(s) not in tools: mypy (tools = ['ruff-check']); "
            "add them to tools or remove their options",
        ),
        (
            {"options": {"mypy": {"argz": ["--strict"]}}},
            "gates.lint.options.mypy.argz: unknown key (value ['--strict']); check the spelling",
        ),
        (
            {"options": {"mypy": {"command": []}}},
            "gates.lint.options.mypy.command = []: Value error, command must name a program",
        ),
        ({"timeout": "soon"}, "gates.lint.timeout = 'soon': Value error, expected a duration"),
        ({"timeout": 0}, "gates.lint.timeout = 0: Value error, timeout must be positive"),
        ({"targets": [""]}, "a target cannot be empty; use '.' for the whole rootdir"),
        ({"linters": ["ruff"]}, "gates.lint.linters: unknown key"),
    ],
    ids=[
        "no-tools",
        "duplicate-tool",
        "options-for-unlisted-tool",
        "unknown-option-key",
        "empty-command",
        "bad-timeout",
        "zero-timeout",
        "empty-target",
        "unknown-key",
    ],
)
def test_configuration_errors_name_key_value_and_fix(
    table: dict[str, object], expected: str
) -> None:
    with pytest.raises(ReleaseConfigError) as excinfo:
        load_release_config(
            {"gates": {"lint": {"kind": "lint", **table}}}, "pyproject.toml", builtin_gate_kinds()
        )
    assert expected in str(excinfo.value)


def test_lint_gate_defaults() -> None:
    config = load_release_config(
        {"gates": {"lint": {"kind": "lint"}}}, "pyproject.toml", builtin_gate_kinds()
    )
    gate = config.gates["lint"]
    assert isinstance(gate, LintGateConfig)
    assert gate.tools == ("ruff-check", "ruff-format", "mypy")
    assert gate.targets == (".",)
    assert gate.timeout == 900.0
    assert gate.cache is True


def test_missing_target_fails_status_naming_the_key(pytester: pytest.Pytester) -> None:
    lint_project(
        pytester,
        """
        tools = ["ruff-check"]
        targets = ["src", "lib"]
        """,
        **{"src/app.py": CLEAN},
    )
    result = run_stage(pytester, "check")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ruff-check: target(s) 'lib' do not exist under the rootdir * fix gates.lint.targets*"]
    )


# -- parsers on output shapes the real tools above did not print ------------------------------


def test_parsers_read_older_and_rarer_output_shapes(tmp_path: Path) -> None:
    def out(stdout: str = "", stderr: str = "", code: int = 1) -> ToolOutput:
        return ToolOutput(stdout, stderr, code, tmp_path)

    # mypy: errors without a line (module-level), notes, absolute paths.
    mypy = parse_mypy(
        out(
            f"{tmp_path}/pkg/a.py: error: Duplicate module named 'a'\n"
            "pkg/b.py:3: note: Revealed type is 'int'\n"
            "pkg/b.py:4:5: error: Name 'x' is not defined  [name-defined]\n"
        )
    )
    assert [f.format() for f in mypy] == [
        "pkg/a.py Duplicate module named 'a'",
        "pkg/b.py:3 note: Revealed type is 'int'",
        "pkg/b.py:4:5 name-defined Name 'x' is not defined",
    ]
    assert [f.fails for f in mypy] == [True, False, True]

    # ruff without JSON output for `format --check`.
    fmt = parse_ruff_format(out("Would reformat: src/a.py\n1 file would be reformatted\n"))
    assert [(f.path, f.line) for f in fmt] == [("src/a.py", 1)]
    with pytest.raises(ParseError):
        parse_ruff_format(out("something else entirely\n"))

    # black before 24: "cannot format PATH: Cannot parse: LINE:COL: ...".
    black = parse_black(
        out(stderr=f"error: cannot format {tmp_path}/src/a.py: Cannot parse: 7:4: def f(:\n")
    )
    assert [(f.path, f.line, f.col, f.code) for f in black] == [("src/a.py", 7, 4, "black-error")]

    # isort diff headers carry ":before"/":after"; the first changed line is found.
    diff = (
        f"--- {tmp_path}/src/a.py:before\t2024-01-01\n"
        f"+++ {tmp_path}/src/a.py:after\t2024-01-01\n"
        "@@ -3,4 +3,4 @@\n"
        " import a\n"
        "-import c\n"
        " import b\n"
        "+import c\n"
    )
    assert first_changed_lines(diff, tmp_path) == {"src/a.py": 4}

    # pip-audit before 2.0 printed a bare list.
    audit = parse_pip_audit(
        out(json.dumps([{"name": "x", "version": "1", "vulns": [{"id": "V-1"}]}]))
    )
    assert [(f.group, f.code) for f in audit] == [("x==1", "V-1")]
    with pytest.raises(ParseError):
        parse_pip_audit(out("not json"))

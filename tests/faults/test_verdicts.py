"""Verdicts that must be true (issue 16, points 1-4).

Cases:

1. two interrupts (a second SIGTERM/SIGINT while the first is being handled) record
   ``interrupted``, never ``passed`` — deterministic (the second signal sent from the
   ``pytest_keyboard_interrupt`` hook, the window of the original bug) and timed (a real
   double SIGTERM), with and without ``-n 2``;
2. anything that narrows the stage's selection (``-k``, a node id, a test file,
   ``--deselect``, ``--lf``) is a partial run, recorded as such, and satisfies no
   ``requires``; ``-x`` stopping early is ``failed``;
3. a rollback that fails after an interrupt records ``rollback-failed``, exits non-zero,
   is shown loudly by ``--release-status`` and refuses the next rollout (but not the
   ``rollback`` stage) — in ``tests/faults/test_rollback_failed.py``;
4. report paths that cannot be written are a usage error before any test runs (no ledger
   entry), and a report that fails at the very end leaves a finished ledger entry and a
   clear error.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.junit import read_cases
from tests.support.pipelines import TWO_STAGES as PIPELINE
from tests.support.spine import (
    ledger_runs,
    project,
    run_stage,
    stage_process,
    wait_for_file,
)

TESTS = {
    "tests/test_a.py": """
        def test_one():
            pass

        def test_two():
            pass

        def test_three():
            pass
    """,
}


def _outcomes(root: Path) -> list[str]:
    return [run["outcome"] for run in ledger_runs(root)]


def test_a_second_signal_while_the_first_is_handled_records_interrupted(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    # pytest reports an interrupt through pytest_keyboard_interrupt before it sets the exit
    # status; a second signal in that window used to end the session with status 0.
    project(
        pytester,
        PIPELINE,
        **{
            "conftest.py": """
                import os, signal

                def pytest_keyboard_interrupt(excinfo):
                    os.kill(os.getpid(), signal.SIGTERM)
            """,
            "tests/test_a.py": """
                import os, signal

                def test_first():
                    pass

                def test_interrupts(request):
                    # The stage session runs in this process, or in the xdist controller.
                    worker = hasattr(request.config, "workerinput")
                    os.kill(os.getppid() if worker else os.getpid(), signal.SIGTERM)
                    import time; time.sleep(30)

                def test_never_runs():
                    pass
            """,
        },
    )
    result = run_stage(pytester, "one", *xdist)
    assert result.ret != 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*release stage one: interrupted*"])
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "interrupted"
    assert run["gates"]["unit"]["status"] != "passed"
    # Every selected item is in the report; the ones that never ran are not "passed".
    names = {"test_first", "test_interrupts", "test_never_runs"}
    cases = [c for c in read_cases(pytester.path / "reports" / "one.xml") if c.name in names]
    assert len(cases) == 3
    not_passed = [c.name for c in cases if c.outcome != "passed"]
    assert len(not_passed) == 3 - run["gates"]["unit"]["passed"]
    assert not_passed
    refused = run_stage(pytester, "two")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(["*requires 'one' (last run interrupted)*"])


def test_a_real_double_sigterm_records_interrupted(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(
        pytester,
        PIPELINE,
        **{
            "tests/test_a.py": """
                import pathlib, time

                def test_slow():
                    pathlib.Path("started").touch()
                    time.sleep(30)

                def test_after():
                    pass
            """,
        },
    )
    with stage_process(pytester.path, "one", *xdist) as process:
        wait_for_file(process, pytester.path / "started", timeout=120)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "interrupted", output
    assert run["finished"]
    assert run["gates"]["unit"]["status"] != "passed"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-k", "test_one"], "deselected"),
        (["--deselect", "tests/test_a.py::test_two"], "deselected"),
        (["tests/test_a.py::test_one"], "only tests/test_a.py::test_one given"),
        (["tests/test_a.py"], "only tests/test_a.py given"),
    ],
    ids=["-k", "--deselect", "node-id", "file"],
)
def test_a_narrowed_selection_is_partial_and_satisfies_no_requires(
    pytester: pytest.Pytester, args: list[str], reason: str, xdist: list[str]
) -> None:
    project(pytester, PIPELINE, **TESTS)
    result = run_stage(pytester, "one", *args, *xdist)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*partial run (*{reason}*)*satisfies no stage's requires*"])
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "passed"
    assert reason in run["partial"]
    refused = run_stage(pytester, "two")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(["*requires 'one' (only partial runs (1)*run the whole stage)*"])
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1")
    status.stdout.fnmatch_lines([f"*one*passed*[[]partial run: *{reason}*]*"])
    # The whole stage, the same tests: a full run that satisfies the requirement.
    full = run_stage(pytester, "one", *xdist)
    assert full.ret == 0
    assert ledger_runs(pytester.path)[-1]["partial"] is None
    assert run_stage(pytester, "two", *xdist).ret == 0


def test_last_failed_is_a_partial_run(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        PIPELINE,
        **{
            "tests/test_a.py": """
                import os

                def test_ok():
                    pass

                def test_flaky():
                    assert os.path.exists("fixed")
            """,
        },
    )
    first = pytester.runpytest_subprocess("--stage=one", "--release-id=r1")
    assert first.ret == 1
    (pytester.path / "fixed").touch()
    again = pytester.runpytest_subprocess("--stage=one", "--release-id=r1", "--lf")
    assert again.ret == 0, again.stdout.str()
    assert _outcomes(pytester.path) == ["failed", "passed"]
    assert "--lf" in ledger_runs(pytester.path)[-1]["partial"]
    assert run_stage(pytester, "two").ret == 4


def test_stopping_at_the_first_failure_is_failed_not_passed(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(
        pytester,
        PIPELINE,
        **{
            "tests/test_a.py": """
                def test_fails():
                    assert False

                def test_b():
                    pass

                def test_c():
                    pass
            """,
        },
    )
    result = run_stage(pytester, "one", "-x", *xdist)
    assert result.ret == 1
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "failed"


@pytest.mark.parametrize(
    ("args", "make", "expected"),
    [
        (["--reports-dir=out"], lambda root: (root / "out").write_text("a file"), "is a file"),
        ([], lambda root: (root / "reports" / "one.xml").mkdir(parents=True), "is a directory"),
    ],
    ids=["reports-dir-is-a-file", "junit-path-is-a-directory"],
)
def test_unwritable_report_paths_are_refused_before_any_test_runs(
    pytester: pytest.Pytester, args: list[str], make: object, expected: str
) -> None:
    project(pytester, PIPELINE, **TESTS)
    make(pytester.path)  # type: ignore[operator]
    result = run_stage(pytester, "one", *args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*cannot write its reports*{expected}*--reports-dir*"])
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()


def test_a_bad_github_step_summary_is_refused_before_any_test_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, PIPELINE, **TESTS)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "no" / "such" / "dir" / "f"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(pytester.path))  # a directory
    result = run_stage(pytester, "one")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*$GITHUB_STEP_SUMMARY = *cannot be appended to*"])
    result.stderr.fnmatch_lines(["*$GITHUB_OUTPUT = *cannot be appended to*"])
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()


def test_a_report_that_fails_at_the_end_leaves_a_finished_ledger_entry(
    pytester: pytest.Pytester,
) -> None:
    # The reports directory is replaced by a file while the tests run.
    project(
        pytester,
        PIPELINE,
        **{
            "tests/test_a.py": """
                import pathlib, shutil

                def test_breaks_the_reports_dir():
                    shutil.rmtree("reports")
                    pathlib.Path("reports").write_text("not a directory")
            """,
        },
    )
    result = run_stage(pytester, "one")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR: the JUnit report *one.xml could not be written*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "passed"
    assert run["finished"]
    assert json.loads((pytester.path / ".pytest-release" / "ledger.json").read_text())


def test_the_report_of_another_release_is_kept_not_overwritten(
    pytester: pytest.Pytester,
) -> None:
    project(pytester, PIPELINE, **TESTS)
    assert run_stage(pytester, "one", release="r1").ret == 0
    first = (pytester.path / "reports" / "one.xml").read_text(encoding="utf-8")
    assert run_stage(pytester, "one", release="r1").ret == 0  # same release: replaced
    assert sorted(p.name for p in (pytester.path / "reports").iterdir()) == ["one.xml"]
    assert run_stage(pytester, "one", release="r2").ret == 0
    names = sorted(p.name for p in (pytester.path / "reports").iterdir())
    assert names == ["one.r1.xml", "one.xml"]
    kept = (pytester.path / "reports" / "one.r1.xml").read_text(encoding="utf-8")
    assert 'name="release_id" value="r1"' in kept
    assert 'name="release_id" value="r2"' in (pytester.path / "reports" / "one.xml").read_text()
    assert first.count("<testcase") == kept.count("<testcase")


def test_the_ledger_keeps_its_file_mode(pytester: pytest.Pytester) -> None:
    project(pytester, PIPELINE, **TESTS)
    assert run_stage(pytester, "one").ret == 0
    ledger = pytester.path / ".pytest-release" / "ledger.json"
    ledger.chmod(0o644)
    assert run_stage(pytester, "two").ret == 0
    assert ledger.stat().st_mode & 0o777 == 0o644
    assert len(ledger_runs(pytester.path)) == 2

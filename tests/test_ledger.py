"""The ledger: records, requires, override, corruption, concurrency, status, interruption."""

from __future__ import annotations

import json
import multiprocessing
import signal
from pathlib import Path

import pytest

from pytest_release.errors import LedgerError
from pytest_release.ledger.ledger import Ledger, LedgerEntry, render_document
from pytest_release.ledger.stage_run import GateResult
from tests.support.pipelines import stages_of_gates
from tests.support.spine import (
    assert_usage_error,
    ledger_runs,
    project,
    run_stage,
    stage_process,
    wait_for_file,
)

PIPELINE = stages_of_gates(
    {"first": "tests/first/*", "second": "tests/second/*"},
    {"one": ["first"], "two": ["second"]},
)


def _pipeline(pytester: pytest.Pytester, first_passes: bool = True) -> None:
    project(
        pytester,
        PIPELINE,
        **{
            "tests/first/test_f.py": f"def test_f(): assert {first_passes}\n",
            "tests/second/test_s.py": "def test_s(): pass\n",
        },
    )


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_stage_run_is_recorded(pytester: pytest.Pytester, xdist: list[str]) -> None:
    _pipeline(pytester)
    run_stage(pytester, "one", "--image=shop:1", *xdist).assert_outcomes(passed=1)
    (run,) = ledger_runs(pytester.path)
    assert run["release_id"] == "r1"
    assert run["stage"] == "one"
    assert run["image"] == "shop:1"
    assert run["outcome"] == "passed"
    assert run["report"] == "reports/one.xml"
    assert run["gates"] == {
        "first": {
            "status": "passed",
            "passed": 1,
            "failed": 0,
            "skipped": 0,
            "closed": 0,
            "not_run": 0,
            "xfailed": 0,
            "duration": run["gates"]["first"]["duration"],
        }
    }
    assert run["started"] <= run["finished"]
    assert run["host"]


def test_requires_is_enforced_per_release(pytester: pytest.Pytester) -> None:
    _pipeline(pytester, first_passes=False)
    result = run_stage(pytester, "two")
    assert_usage_error(
        result,
        "ERROR: stage 'two' requires 'one' (has not run) to have passed for release r1 "
        "(ledger */.pytest-release/ledger.json)*--override-requires=REASON*",
    )
    assert run_stage(pytester, "one").ret == 1
    result = run_stage(pytester, "two")
    assert_usage_error(result, "*requires 'one' (last run failed)*release r1*")

    (pytester.path / "tests/first/test_f.py").write_text("def test_f(): pass\n")
    assert run_stage(pytester, "one").ret == 0
    assert run_stage(pytester, "two").ret == 0
    # Another release has its own history.
    result = run_stage(pytester, "two", release="r2")
    assert_usage_error(result, "*release r2*")


def test_override_is_recorded(pytester: pytest.Pytester) -> None:
    _pipeline(pytester)
    result = run_stage(pytester, "two", "--override-requires=hotfix approved by ops")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["requires overridden: hotfix approved by ops"])
    (run,) = ledger_runs(pytester.path)
    assert run["override_requires"] == "hotfix approved by ops"


def test_corrupt_or_foreign_ledger_is_an_error_and_left_untouched(
    pytester: pytest.Pytester,
) -> None:
    _pipeline(pytester)
    ledger = pytester.path / ".pytest-release" / "ledger.json"
    ledger.parent.mkdir()
    ledger.write_text('{"runs": [')
    result = run_stage(pytester, "one")
    assert_usage_error(result, "*ledger.json is corrupt (not valid JSON*left untouched*")
    assert ledger.read_text() == '{"runs": ['

    ledger.write_text('{"something": "else"}')
    result = run_stage(pytester, "one")
    assert_usage_error(result, "*is not a pytest-release ledger*")
    assert ledger.read_text() == '{"something": "else"}'


def _append_many(path: str, worker: int) -> None:
    ledger = Ledger(Path(path))
    for n in range(15):
        entry = LedgerEntry.start(
            release_id=f"w{worker}",
            stage=f"s{n}",
            image=None,
            report=None,
            override_requires=None,
        )
        ledger.append(entry)
        ledger.update(entry.finish("passed", [GateResult("g", "passed", 1, 0, 0, 0, 0.1)]))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    entries = Ledger(path).entries()
    assert len(entries) == 60
    assert all(e.outcome == "passed" for e in entries)
    assert not list(tmp_path.glob(".ledger.json.*")), "temporary files left behind"


def test_the_ledger_is_json_with_one_run_per_line(tmp_path: Path) -> None:
    # Readable and diffable without an indenting encoder (written three times a stage).
    path = tmp_path / "ledger.json"
    assert render_document([]) == '{"format": "pytest-release/ledger", "version": 1, "runs": []}\n'
    _append_many(str(path), 0)
    text = path.read_text()
    document = json.loads(text)
    lines = text.splitlines()
    assert len(lines) == 2 + len(document["runs"]) == 2 + 15
    assert [json.loads(line.strip().rstrip(",")) for line in lines[1:-1]] == document["runs"]
    assert [e.run_id for e in Ledger(path).entries()] == [r["run_id"] for r in document["runs"]]


def test_ledger_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"format": "pytest-release/ledger", "version": 99, "runs": []}))
    with pytest.raises(LedgerError, match="has version 99"):
        Ledger(path).entries()


def test_release_status_prints_the_ledger(pytester: pytest.Pytester) -> None:
    _pipeline(pytester)
    run_stage(pytester, "one")
    run_stage(pytester, "two")
    result = pytester.runpytest_subprocess("--release-status", "--release-id=r1")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "release r1:",
            "*stage*outcome*",
            "  one * passed *first passed*",
            "  two * passed *second passed*",
        ]
    )
    other = pytester.runpytest_subprocess("--release-status", "--release-id=zzz")
    other.stdout.fnmatch_lines(["release zzz: no stage has run yet"])


def test_sigterm_during_a_stage_records_interrupted(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        PIPELINE,
        **{
            "tests/first/test_f.py": """
                import pathlib, time
                def test_slow():
                    pathlib.Path("started").touch()
                    time.sleep(60)
            """,
        },
    )
    with stage_process(pytester.path, "one") as process:
        wait_for_file(process, pytester.path / "started", timeout=30)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 2, output
    assert "release stage one: interrupted" in output
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "interrupted"
    assert run["finished"]
    result = run_stage(pytester, "two")
    assert_usage_error(result, "*requires 'one' (last run interrupted)*")


def test_partial_run_with_gate_option_satisfies_no_requires(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        PIPELINE.replace('gates = ["first"]', 'gates = ["first", "extra"]')
        + '[gates.extra]\npaths = ["tests/extra/*"]\n',
        **{
            "tests/first/test_f.py": "def test_f(): pass\n",
            "tests/extra/test_e.py": "def test_e(): raise AssertionError('not selected')\n",
            "tests/second/test_s.py": "def test_s(): pass\n",
        },
    )
    result = run_stage(pytester, "one", "--gate=first")
    result.assert_outcomes(passed=1)
    (run,) = ledger_runs(pytester.path)
    assert run["only_gates"] == ["first"]
    assert run["outcome"] == "passed"
    refused = run_stage(pytester, "two")
    assert_usage_error(refused, "*requires 'one' (only partial runs (1)*run the whole stage)*")
    bad = run_stage(pytester, "one", "--gate=nope")
    assert_usage_error(bad, "*--gate nope: not a gate of stage 'one'; its gates: first, extra*")


def test_two_rollouts_never_overlap(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        [gates.steps]
        paths = ["tests/steps/*"]
        [stages.roll]
        gates = ["steps"]
        rollout = { action = "canary", replicas = 1, weight = 10, hold = "1s" }
        """,
        **{
            "tests/steps/test_hold.py": """
                import pathlib, time
                def test_hold():
                    pathlib.Path("holding").touch()
                    deadline = time.monotonic() + 60
                    while not pathlib.Path("release").exists():
                        assert time.monotonic() < deadline
                        time.sleep(0.05)
            """,
        },
    )
    with stage_process(pytester.path, "roll") as first:
        wait_for_file(first, pytester.path / "holding", timeout=30)
        second = run_stage(pytester, "roll", release="r2")
        assert_usage_error(
            second,
            f"ERROR: cannot start stage 'roll': another rollout holds the lock (stage roll of "
            f"release r1, pid {first.pid} on *); wait for it to finish.*",
        )
        (pytester.path / "release").touch()
        output, _ = first.communicate(timeout=60)
        assert first.returncode == 0, output
    # Released at the end of the first session: the next rollout may start.
    assert run_stage(pytester, "roll", release="r3").ret == 0
    assert [r["release_id"] for r in ledger_runs(pytester.path)] == ["r1", "r3"]


def test_collect_only_records_nothing(pytester: pytest.Pytester) -> None:
    _pipeline(pytester)
    result = run_stage(pytester, "one", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["tests/first/test_f.py::test_f"])
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()
    assert not (pytester.path / "reports").exists()


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_collection_error_fails_the_stage(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(pytester, PIPELINE, **{"tests/first/test_f.py": "import no_such_module\n"})
    result = run_stage(pytester, "one", *xdist)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*release stage one: failed*", "1 error(s) during collection"])
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "failed"

"""A stage across runners (issue 26, item 9): the generated workflow runs a stage's gates
as a job matrix (``--split-gates``), and ``merge-shards`` records the stage as one run.

The shards run here as separate pytest processes with separate ledgers, as separate jobs
would (GitHub's run context set as a runner sets it); the merged stage satisfies a later
stage's ``requires`` only when every gate ran once, in full, in the same CI run, and
passed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import nullcontext as _no_exit
from pathlib import Path
from typing import Any

import pytest

from pytest_release.workflow import file as workflow_file
from pytest_release.workflow.shards import merge_ledgers, merge_shard_runs
from tests.support.spine import project, run_stage
from tests.workflow_support import actionlint, load_yaml, run_action_script, stage_step

TOML = """
[stages.uat]
gates = ["unit", "integration"]
[stages.next]
gates = ["unit"]
requires = ["uat"]
"""
FILES = {
    "tests/unit/test_a.py": "def test_a():\n    pass\n",
    "tests/integration/test_b.py": (
        "import os\ndef test_b():\n    assert os.environ.get('BREAK_B') != '1'\n"
    ),
    "tests/integration/test_c.py": "def test_c():\n    pass\n",
    "tests/integration/test_many.py": (
        "import pytest\n@pytest.mark.parametrize('n', range(10))\ndef test_many(n):\n    pass\n"
    ),
}


@pytest.fixture
def shards(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    project(pytester, TOML, **FILES)
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKFLOW": "release",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    return pytester


def _shard(pytester: pytest.Pytester, gate: str, ledger: str) -> pytest.RunResult:
    return run_stage(pytester, "uat", f"--release-gate={gate}", f"--release-ledger={ledger}")


def _merge(pytester: pytest.Pytester, *sources: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_release", "merge-shards", "--stage=uat"]
    command += ["--release-id=r1", "--into=ledger.json", *sources]
    return subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, check=False)


def _next_stage(pytester: pytest.Pytester) -> pytest.RunResult:
    return run_stage(pytester, "next", "--release-ledger=ledger.json")


def _runs(path: Path) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(path.read_text())["runs"]
    return runs


def _merged(pytester: pytest.Pytester) -> dict[str, Any]:
    runs = [r for r in _runs(pytester.path / "ledger.json") if r["stage"] == "uat"]
    merged = [r for r in runs if r["only_gates"] is None and r.get("shard") is None]
    assert len(merged) == 1
    return merged[0]


def test_every_gate_once_and_passed_is_the_stage_run_in_full(shards: pytest.Pytester) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    assert _shard(shards, "integration", "integration.json").ret == 0
    # One shard's ledger alone: the stage has not run (a partial run satisfies nothing).
    (shards.path / "ledger.json").write_text((shards.path / "unit.json").read_text())
    assert _next_stage(shards).ret == 4
    (shards.path / "ledger.json").unlink()

    done = _merge(shards, "unit.json", "integration.json")
    assert done.returncode == 0, done.stderr
    assert "stage uat of release r1: merged from 2 shards" in done.stdout
    merged = _merged(shards)
    assert merged["outcome"] == "passed"
    assert sorted(merged["gates"]) == ["integration", "unit"]
    assert merged["gates"]["unit"]["passed"] == 1
    assert len(merged["details"]["merged_from"]) == 2
    assert merged["ci"]["run_id"] == "4242"
    assert _next_stage(shards).ret == 0


def test_a_missing_shard_is_a_clear_failure(shards: pytest.Pytester) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    done = _merge(shards, "unit.json")
    assert done.returncode == 1
    assert "gate 'integration': no shard ran it" in done.stderr
    assert _merged(shards)["outcome"] == "failed"
    assert _next_stage(shards).ret == 4


def test_a_duplicated_shard_is_a_clear_failure(shards: pytest.Pytester) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    assert _shard(shards, "unit", "unit-again.json").ret == 0
    assert _shard(shards, "integration", "integration.json").ret == 0
    done = _merge(shards, "unit.json", "unit-again.json", "integration.json")
    assert done.returncode == 1
    assert "gate 'unit': ran in 2 shards" in done.stderr
    assert _next_stage(shards).ret == 4


def test_a_failed_shard_fails_the_stage(
    shards: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    monkeypatch.setenv("BREAK_B", "1")
    assert _shard(shards, "integration", "integration.json").ret == 1
    done = _merge(shards, "unit.json", "integration.json")
    assert done.returncode == 1
    assert "shard integration (run " in done.stderr
    assert ": failed" in done.stderr
    assert _merged(shards)["outcome"] == "failed"
    assert _next_stage(shards).ret == 4


def test_shards_of_another_ci_run_or_partial_are_not_the_stage(
    shards: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    monkeypatch.setenv("GITHUB_RUN_ID", "4243")  # another run: maybe another commit
    assert _shard(shards, "integration", "integration.json").ret == 0
    done = _merge(shards, "unit.json", "integration.json")
    assert done.returncode == 1
    assert "the shards come from different CI runs" in done.stderr
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    result = run_stage(
        shards, "uat", "--release-gate=integration", "--release-ledger=k.json", "-k", "not test_c"
    )
    assert result.ret == 0  # passed, but without test_c: recorded as partial
    (shards.path / "ledger.json").unlink()
    done = _merge(shards, "unit.json", "k.json")
    assert done.returncode == 1
    assert "not run in full" in done.stderr


# -- one gate's tests in N shards (--release-shard=K/N) -----------------------------------
PASSED = re.compile(r"(tests/\S+::\S+)")


def _ran(result: pytest.RunResult) -> set[str]:
    """The tests a run passed (``-v`` lines, serial or xdist)."""
    return {
        m[1] for line in result.outlines if "PASSED" in line for m in [PASSED.search(line)] if m
    }


def _gate_shard(pytester: pytest.Pytester, shard: str, ledger: str, *args: str) -> pytest.RunResult:
    return run_stage(
        pytester,
        "uat",
        "--release-gate=integration",
        f"--release-shard={shard}",
        f"--release-ledger={ledger}",
        "-v",
        *args,
    )


def test_the_shards_of_a_gate_run_each_of_its_tests_once(shards: pytest.Pytester) -> None:
    whole = run_stage(shards, "uat", "--release-gate=integration", "-v")
    assert whole.ret == 0
    everything = _ran(whole)
    assert len(everything) == 12
    parts = []
    for k in (1, 2, 3):
        done = _gate_shard(shards, f"{k}/3", f"i{k}.json")
        assert done.ret == 0, done.stdout.str()
        parts.append(_ran(done))
        [run] = _runs(shards.path / f"i{k}.json")
        assert (run["shard"], run["only_gates"], run["partial"]) == (
            f"{k}/3",
            ["integration"],
            None,
        )
        assert run["gates"]["integration"]["passed"] == len(parts[-1])
        assert f"{13 - len(parts[-1])} deselected" in done.stdout.str()  # and test_a
    assert all(parts), parts  # every shard has some of the 12
    assert set().union(*parts) == everything
    assert sum(len(p) for p in parts) == len(everything)  # none in two shards


def test_a_gate_in_shards_merged_is_the_stage_run_in_full(shards: pytest.Pytester) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    assert _gate_shard(shards, "1/2", "i1.json").ret == 0
    (shards.path / "ledger.json").write_text((shards.path / "i1.json").read_text())
    assert _next_stage(shards).ret == 4  # one shard is not the stage
    (shards.path / "ledger.json").unlink()
    assert _gate_shard(shards, "2/2", "i2.json").ret == 0
    done = _merge(shards, "unit.json", "i1.json", "i2.json")
    assert done.returncode == 0, done.stderr
    merged = _merged(shards)
    assert merged["outcome"] == "passed"
    assert merged["gates"]["integration"]["passed"] == 12  # both halves added
    assert len(merged["details"]["merged_from"]) == 3
    assert _next_stage(shards).ret == 0


def test_the_whole_stage_in_shards_merged_adds_up(shards: pytest.Pytester) -> None:
    """Without --release-gate a shard takes its part of every gate; a shard that holds no
    test of a gate is not an empty gate (the merge counts the gate over all shards)."""
    for k in (1, 2):
        done = run_stage(shards, "uat", f"--release-shard={k}/2", f"--release-ledger=s{k}.json")
        assert done.ret == 0, done.stdout.str()
        [run] = _runs(shards.path / f"s{k}.json")
        assert (run["shard"], run["only_gates"], run["partial"]) == (f"{k}/2", None, None)
    done = _merge(shards, "s1.json", "s2.json")
    assert done.returncode == 0, done.stderr
    merged = _merged(shards)
    assert merged["gates"]["unit"]["passed"] == 1
    assert merged["gates"]["integration"]["passed"] == 12
    assert _next_stage(shards).ret == 0


@pytest.mark.parametrize(
    ("runs", "reason"),
    [
        (["1/3", "3/3"], "gate 'integration': shard(s) 2/3 missing"),
        (["1/2", "1/2", "2/2"], "gate 'integration': shard 1/2 ran 2 times (runs "),
        (["1/2", "2/2", "1/3"], "gate 'integration': its shards split it in different numbers"),
        (["whole", "1/2", "2/2"], "gate 'integration': ran in 3 shards (runs "),
    ],
)
def test_missing_duplicated_or_mixed_shards_fail_the_stage(
    shards: pytest.Pytester, runs: list[str], reason: str
) -> None:
    assert _shard(shards, "unit", "unit.json").ret == 0
    ledgers = ["unit.json"]
    for n, shard in enumerate(runs):
        ledger = f"i{n}.json"
        if shard == "whole":
            assert _shard(shards, "integration", ledger).ret == 0
        else:
            assert _gate_shard(shards, shard, ledger).ret == 0
        ledgers.append(ledger)
    done = _merge(shards, *ledgers)
    assert done.returncode == 1
    assert reason in done.stderr
    assert _merged(shards)["outcome"] == "failed"
    assert reason in _merged(shards)["message"]
    assert _next_stage(shards).ret == 4


def test_a_shard_under_xdist_runs_the_tests_of_the_serial_shard(shards: pytest.Pytester) -> None:
    serial = _gate_shard(shards, "2/3", "serial.json")
    parallel = _gate_shard(shards, "2/3", "xdist.json", "-n", "2")
    assert serial.ret == parallel.ret == 0, parallel.stdout.str()
    assert _ran(parallel) == _ran(serial) != set()
    [run] = _runs(shards.path / "xdist.json")
    assert (run["shard"], run["outcome"], run["partial"]) == ("2/3", "passed", None)
    assert run["gates"]["integration"]["passed"] == len(_ran(serial))


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "3/0", "1/-2", ""])
def test_a_bad_shard_is_a_usage_error(shards: pytest.Pytester, value: str) -> None:
    result = run_stage(shards, "uat", f"--release-shard={value}")
    assert result.ret == 4
    err = result.stderr.str()
    assert f"--release-shard={value!r}" in err
    assert "K/N with 1 <= K <= N, e.g. --release-shard=1/3" in err
    assert "INTERNALERROR" not in err + result.stdout.str()


# -- the generated workflow ---------------------------------------------------------------
def _generate(tmp_path: Path, *extra: str) -> dict[str, Any]:
    (tmp_path / "release.toml").write_text(TOML)
    out = tmp_path / ".github" / "workflows" / "release.yml"
    argv = ["--release-config=release.toml", "--action=./", f"-o={out}", *extra]
    assert workflow_file.main(argv, tmp_path) == 0
    assert actionlint(out).returncode == 0, actionlint(out).stdout
    return load_yaml(out)


def test_a_split_stage_is_a_matrix_of_gates_and_a_merge_job(tmp_path: Path) -> None:
    jobs = _generate(tmp_path, "--split-gates=uat")["jobs"]
    shards_job, merge_job = jobs["uat-shards"], jobs["uat"]
    assert shards_job["strategy"] == {
        "fail-fast": False,
        "matrix": {"gate": ["unit", "integration"]},
    }
    inputs = stage_step(shards_job)["with"]
    assert inputs["gates"] == "${{ matrix.gate }}"
    assert inputs["artifact-suffix"] == "-${{ matrix.gate }}"
    assert merge_job["needs"] == ["uat-shards"]
    assert merge_job["if"] == "${{ !cancelled() }}"
    merge = stage_step(merge_job)["with"]
    assert merge["merge-shards"] == "true"
    assert merge["ledger-from"] == "uat-unit uat-integration"
    assert jobs["next"]["needs"] == ["uat"]  # later jobs need the merged stage
    assert stage_step(jobs["next"])["with"]["ledger-from"] == "uat"


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("canary-1", "--split-gates=canary-1: the stage has a rollout (canary)"),
        ("next", "--split-gates=next: the stage has one gate (unit)"),
        ("nope", "--split-gates names stage 'nope', which is not configured"),
        ("uat", "--split-gates: the shards' records are merged from their ledger files, but"),
    ],
)
def test_a_stage_that_cannot_be_split_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stage: str, message: str
) -> None:
    ledger = '[ledger]\nbackend = "kubernetes"\n' if "ledger" in message else ""
    (tmp_path / "release.toml").write_text(ledger + TOML)
    argv = ["--release-config=release.toml", "--action=./", f"--split-gates={stage}"]
    assert workflow_file.main(argv, tmp_path) == 2
    assert message in capsys.readouterr().err


def test_the_actions_scripts_run_shards_and_merge_them(shards: pytest.Pytester) -> None:
    """The action's own scripts: the ``gates`` input becomes ``--release-gate``, and
    ``merge-shards: "true"`` records the stage from the shards' ledgers (as the merge job
    runs it after its ledger step merged the shard artifacts)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT",)}
    env["GITHUB_SHA"] = "r1"
    given = {
        "stage": "uat",
        "pytest-args": "-p no:cacheprovider",
        "reports-dir": str(shards.path / "reports"),
    }
    for gate in ("unit", "integration"):
        ledger = str(shards.path / f"{gate}.json")
        done = run_action_script(
            "stage", {**given, "gates": gate, "ledger": ledger}, shards.path, env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"--release-gate={gate}" in done.stdout
        [run] = _runs(Path(ledger))
        assert run["only_gates"] == [gate]
    # The merge job's ledger step has merged the shard artifacts into its ledger.
    merge_ledgers(
        [shards.path / "unit.json", shards.path / "integration.json"], shards.path / "ledger.json"
    )
    merge = {"stage": "uat", "merge-shards": "true", "ledger": str(shards.path / "ledger.json")}
    done = run_action_script("Merge the shards", merge, shards.path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _merged(shards)["outcome"] == "passed"
    assert _next_stage(shards).ret == 0


def test_a_sharded_gate_is_a_matrix_entry_per_shard(tmp_path: Path) -> None:
    jobs = _generate(tmp_path, "--split-gates=uat", "--shard-gate=uat:integration=3")["jobs"]
    shards_job, merge_job = jobs["uat-shards"], jobs["uat"]
    include = shards_job["strategy"]["matrix"]["include"]
    assert [(e["gate"], e["shard"], e["shard-args"], e["suffix"]) for e in include] == [
        ("unit", "", "", "-unit"),
        ("integration", "1/3", "--release-shard=1/3", "-integration-1-of-3"),
        ("integration", "2/3", "--release-shard=2/3", "-integration-2-of-3"),
        ("integration", "3/3", "--release-shard=3/3", "-integration-3-of-3"),
    ]
    inputs = stage_step(shards_job)["with"]
    assert inputs["gates"] == "${{ matrix.gate }}"
    assert inputs["pytest-args"].endswith("${{ matrix.shard-args }}")
    assert inputs["artifact-suffix"] == "${{ matrix.suffix }}"
    assert stage_step(merge_job)["with"]["ledger-from"] == (
        "uat-unit uat-integration-1-of-3 uat-integration-2-of-3 uat-integration-3-of-3"
    )
    # The header's arguments regenerate the same file (--check).
    out = tmp_path / ".github" / "workflows" / "release.yml"
    assert workflow_file.main([f"--check={out}"], tmp_path) == 0


def test_a_stage_of_one_gate_splits_by_shards(tmp_path: Path) -> None:
    jobs = _generate(tmp_path, "--split-gates=next", "--shard-gate=next:unit=2")["jobs"]
    include = jobs["next-shards"]["strategy"]["matrix"]["include"]
    assert [e["shard"] for e in include] == ["1/2", "2/2"]
    assert stage_step(jobs["next"])["with"]["ledger-from"] == "next-unit-1-of-2 next-unit-2-of-2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard-gate=uat:integration=3"], "stage 'uat' is not split across jobs; add --split"),
        (["--split-gates=uat", "--shard-gate=uat:e2e=3"], "stage 'uat' has no gate 'e2e'; its"),
        (["--split-gates=uat", "--shard-gate=uat:unit=1"], "N must be 2..256"),
        (["--split-gates=uat", "--shard-gate=uat:unit=257"], "N must be 2..256"),
        (["--split-gates=uat", "--shard-gate=uat:unit"], "expected STAGE:GATE=N (N jobs)"),
        (["--split-gates=uat", "--shard-gate=uat:unit=x"], "expected STAGE:GATE=N (N jobs)"),
        (
            ["--split-gates=uat", "--shard-gate=uat:unit=2", "--shard-gate=uat:unit=3"],
            "gate 'unit' of stage 'uat' is sharded twice",
        ),
    ],
)
def test_a_bad_shard_gate_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "release.toml").write_text(TOML)
    argv = ["--release-config=release.toml", "--action=./", *args]
    with pytest.raises(SystemExit) if "expected" in message else _no_exit():
        assert workflow_file.main(argv, tmp_path) == 2
    assert message in capsys.readouterr().err


def test_the_actions_scripts_run_a_gate_in_shards(shards: pytest.Pytester) -> None:
    """The matrix's ``shard-args`` reach pytest through the action's ``pytest-args``; the
    merge job records the stage from the unit job and the two integration shards."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT",)}
    env["GITHUB_SHA"] = "r1"
    reports = str(shards.path / "reports")
    ledgers = []
    for gate, shard_args, name in [
        ("unit", "", "unit"),
        ("integration", "--release-shard=1/2", "i1"),
        ("integration", "--release-shard=2/2", "i2"),
    ]:
        ledger = shards.path / f"{name}.json"
        given = {"stage": "uat", "gates": gate, "ledger": str(ledger), "reports-dir": reports}
        given["pytest-args"] = f"-p no:cacheprovider {shard_args}".strip()
        done = run_action_script("stage", given, shards.path, env)
        assert done.returncode == 0, done.stdout + done.stderr
        ledgers.append(ledger)
    assert [r["shard"] for p in ledgers for r in _runs(p)] == [None, "1/2", "2/2"]
    merge_ledgers(ledgers, shards.path / "ledger.json")
    merge = {"stage": "uat", "merge-shards": "true", "ledger": str(shards.path / "ledger.json")}
    done = run_action_script("Merge the shards", merge, shards.path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _merged(shards)["gates"]["integration"]["passed"] == 12
    assert _next_stage(shards).ret == 0


def _shard_record(shard: str, passed: int) -> dict[str, Any]:
    gate = {"status": "passed" if passed else "empty", "passed": passed, "failed": 0}
    return {
        "run_id": f"run-{shard}",
        "release_id": "r1",
        "stage": "uat",
        "outcome": "passed",
        "started": "2026-12-06T00:00:00Z",
        "finished": "2026-12-06T00:01:00Z",
        "only_gates": ["unit"],
        "shard": shard,
        "gates": {"unit": gate},
        "ci": {"run_id": "4242"},
    }


@pytest.mark.parametrize("allow_empty", [(), ("unit",)])
def test_a_gate_no_shard_selected_a_test_of_is_not_run(allow_empty: tuple[str, ...]) -> None:
    runs = [_shard_record("1/2", 0), _shard_record("2/2", 0)]
    merged = merge_shard_runs(
        runs, stage="uat", release_id="r1", gates=["unit"], allow_empty=allow_empty
    )
    if allow_empty:
        assert (merged.problems, merged.record["outcome"]) == ((), "passed")
    else:
        assert merged.problems == ("gate 'unit': no shard selected any of its tests",)
        assert merged.record["outcome"] == "failed"
    both = merge_shard_runs(
        [_shard_record("1/2", 0), _shard_record("2/2", 3)],
        stage="uat",
        release_id="r1",
        gates=["unit"],
    )
    assert both.problems == ()
    assert both.record["gates"]["unit"]["passed"] == 3
    assert both.record["gates"]["unit"]["status"] == "passed"

"""Invocations in which pytest runs no test record nothing (issue 24, items 1 and 9).

Cases:

1. ``--setup-plan``, ``--setup-only``, ``--collect-only``/``--co``, ``--fixtures``,
   ``--fixtures-per-test``, ``--markers``, ``--help``, ``--version`` on a stage whose unit
   gate holds a failing test: no ledger entry, no report, the next stage still refused,
   and (where pytest runs a session) the summary says nothing was recorded and why; with
   and without ``-n 2``. A rollout stage in those modes takes no lock: it runs while
   another run holds the rollout lock;
9. a rollout stage that deploys the release image, run without ``--release-image``, is a
   usage error (exit 4) naming the option, before anything is recorded or locked; the
   ``rollback`` action needs no image.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_release.ledger.ledger import FileLedgerStore
from tests.support.pipelines import local_process_canary, two_stages
from tests.support.spine import project, run_stage

PIPELINE = (
    two_stages("tests/unit/*")
    + """
[gates.steps]
paths = ["tests/steps/*"]
[stages.roll]
gates = ["steps"]
requires = []
rollout = { action = "canary", replicas = 1, weight = 10, hold = "1s" }
"""
)

TESTS = {
    "tests/unit/test_u.py": """
        def test_passes():
            pass

        def test_fails():
            assert False, "a failing unit test"
    """,
    "tests/steps/test_step.py": "def test_step():\n    pass\n",
}

# pytest runs a session (start, collection, end) in these modes ...
SESSION_MODES = [
    "--setup-plan",
    "--setup-only",
    "--collect-only",
    "--co",
    "--fixtures",
    "--fixtures-per-test",
]
# ... and only prints its own information in these.
INFORMATION_MODES = ["--markers", "--help", "--version"]


def _assert_nothing_recorded(root: Path) -> None:
    ledger = root / ".pytest-release" / "ledger.json"
    assert not ledger.exists(), ledger.read_text()
    assert not (root / "reports").exists()


@pytest.mark.parametrize("mode", SESSION_MODES)
def test_a_mode_that_runs_no_test_records_nothing(
    pytester: pytest.Pytester, mode: str, xdist: list[str]
) -> None:
    project(pytester, PIPELINE, **TESTS)
    result = run_stage(pytester, "one", mode, *xdist)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    result.stdout.fnmatch_lines(
        [
            "*release stage one: not run, nothing recorded*",
            f"{'--collect-only' if mode == '--co' else mode} runs no test: no ledger entry, no "
            "report, no lock*",
        ]
    )
    assert "release stage one: passed" not in output
    _assert_nothing_recorded(pytester.path)
    refused = run_stage(pytester, "two")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*requires 'one' (has not run)*"])


@pytest.mark.parametrize("mode", INFORMATION_MODES)
def test_an_information_mode_records_nothing_and_checks_nothing(
    pytester: pytest.Pytester, mode: str
) -> None:
    project(pytester, PIPELINE, **TESTS)
    # Stage 'two' requires 'one', which never ran: showing pytest's help is not refused.
    result = run_stage(pytester, "two", mode)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    _assert_nothing_recorded(pytester.path)


@pytest.mark.parametrize("mode", ["--setup-plan", "--fixtures", "--collect-only", "--markers"])
def test_a_rollout_stage_that_runs_no_test_takes_no_lock(
    pytester: pytest.Pytester, mode: str
) -> None:
    project(pytester, PIPELINE, **TESTS)
    store = FileLedgerStore(pytester.path / ".pytest-release" / "ledger.json")
    with store.rollout_lock("another rollout, held by the test"):
        result = run_stage(pytester, "roll", mode, "--release-image=shop:2")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "holds the lock" not in output
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()


def canary(action: str, weight: int, hold: str) -> str:
    return local_process_canary(
        f'action = "{action}", replicas = 1, weight = {weight}, hold = "{hold}"'
    )


@pytest.mark.parametrize(
    ("action", "weight", "hold"),
    [("canary", 10, "2s"), ("promote", 100, "0s"), ("bluegreen-switch", 100, "0s")],
)
def test_a_rollout_stage_without_release_image_is_a_usage_error(
    pytester: pytest.Pytester, action: str, weight: int, hold: str
) -> None:
    project(pytester, canary(action=action, weight=weight, hold=hold))
    result = run_stage(pytester, "canary-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        [
            f"*stage 'canary-1' (rollout action '{action}', gate canary) deploys the release "
            "image, but no image was given: pass --release-image=REF (or --image=REF, or "
            "release_image in the pytest ini options)*"
        ]
    )
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()
    assert not (pytester.path / ".pytest-release" / "ledger.json.rollout.owner").exists()


def test_the_rollback_stage_needs_no_release_image(pytester: pytest.Pytester) -> None:
    project(pytester, canary(action="rollback", weight=0, hold="0s"))
    result = run_stage(pytester, "canary-1")
    # Refused or not for other reasons (with no rollout recorded, nothing names what to
    # undo), never for the missing image.
    output = result.stdout.str() + result.stderr.str()
    assert "no image was given" not in output
    assert "deploys the release image" not in output

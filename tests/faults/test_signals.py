"""A second signal never kills a stage (issue 24, item 11).

A real ``pytest --stage`` subprocess gets two signals 0.3 s apart; it must finish what it
records and exit 2 (pytest's ``INTERRUPTED``), never end killed by the signal (-15/-2):

* the first while a test runs, the second while the session is already being torn down
  (after the record is written): the record says ``interrupted``;
* both while the stage starts (the lock held, xdist starting its workers), before it
  could write its ledger entry: nothing is recorded, nothing is left ``running``.

A conftest hook makes each window wait for the test (a file), so the signals land in it
on a loaded machine too. With and without ``-n 2``.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.pipelines import TWO_STAGES as PIPELINE
from tests.support.spine import ledger_runs, project, stage_process, wait_for_file

# Holds the controller in a hook until the test says "go"; workers never wait.
WAIT_IN_HOOK = """
import pathlib, time
import pytest

def _hold(config, name):
    if hasattr(config, "workerinput"):
        return
    pathlib.Path(name).touch()
    deadline = time.monotonic() + 120
    while not pathlib.Path("go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)

@pytest.hookimpl({order})
def {hook}({argument}):
    _hold({config}, "{marker}")
"""

SLOW_TEST = """
import pathlib, time

def test_slow():
    pathlib.Path("started").touch()
    time.sleep(120)
"""

SIGNALS = [
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGINT, id="SIGINT"),
]


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_second_signal_during_teardown_still_exits_2(
    pytester: pytest.Pytester, signum: signal.Signals, xdist: list[str]
) -> None:
    hook = WAIT_IN_HOOK.format(
        hook="pytest_unconfigure",
        order="trylast=True",  # after the stage session's own unconfigure
        argument="config",
        config="config",
        marker="ending",
    )
    project(pytester, PIPELINE, **{"conftest.py": hook, "tests/test_slow.py": SLOW_TEST})
    with stage_process(pytester.path, "one", *xdist) as process:
        wait_for_file(process, pytester.path / "started")
        process.send_signal(signum)
        time.sleep(0.3)
        # The record is written; the session ends, held in its last hook.
        wait_for_file(process, pytester.path / "ending")
        process.send_signal(signum)
        (pytester.path / "go").touch()
        output, _ = process.communicate(timeout=180)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "interrupted", output
    assert run["finished"]


@pytest.mark.parametrize("signum", SIGNALS)
def test_two_signals_while_the_stage_starts_exit_2_and_leave_no_running_entry(
    pytester: pytest.Pytester, signum: signal.Signals, xdist: list[str]
) -> None:
    hook = WAIT_IN_HOOK.format(
        hook="pytest_sessionstart",
        order="tryfirst=True",  # before the stage writes its ledger entry
        argument="session",
        config="session.config",
        marker="starting",
    )
    project(pytester, PIPELINE, **{"conftest.py": hook, "tests/test_slow.py": SLOW_TEST})
    with stage_process(pytester.path, "one", *xdist) as process:
        wait_for_file(process, pytester.path / "starting")
        process.send_signal(signum)
        time.sleep(0.3)
        process.send_signal(signum)
        (pytester.path / "go").touch()
        output, _ = process.communicate(timeout=180)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert not (pytester.path / "started").exists(), "a test ran after the stage was stopped"
    ledger = pytester.path / ".pytest-release" / "ledger.json"
    runs = ledger_runs(pytester.path) if ledger.exists() else []
    # Stopped before it could record a start: nothing, or a finished 'interrupted'.
    assert [r["outcome"] for r in runs] in ([], ["interrupted"]), output
    assert "signal" in output

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


# Where the controller is held until the test says "go": the hook (with its order, its
# argument and the config it reaches from it) and the file it touches once held.
HOLDS = {
    # after the stage session's own unconfigure: the record is written, the session ends
    "teardown": ("pytest_unconfigure", "trylast=True", "config", "config", "ending"),
    # before the stage writes its ledger entry
    "start": ("pytest_sessionstart", "tryfirst=True", "session", "session.config", "starting"),
}


def _two_signals(
    pytester: pytest.Pytester, xdist: list[str], signum: signal.Signals, hold: str, first: str
) -> str:
    """Stage ``one`` (its controller held in ``HOLDS[hold]``) gets ``signum`` once the file
    ``first`` exists, and again 0.3 s later once it is held; then it may go on.  It must
    exit 2 (interrupted, not killed by the signal); its output."""
    hook, order, argument, config, marker = HOLDS[hold]
    conftest = WAIT_IN_HOOK.format(
        hook=hook, order=order, argument=argument, config=config, marker=marker
    )
    project(pytester, PIPELINE, **{"conftest.py": conftest, "tests/test_slow.py": SLOW_TEST})
    with stage_process(pytester.path, "one", *xdist) as process:
        wait_for_file(process, pytester.path / first)
        process.send_signal(signum)
        time.sleep(0.3)
        wait_for_file(process, pytester.path / marker)
        process.send_signal(signum)
        (pytester.path / "go").touch()
        output, _ = process.communicate(timeout=180)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    return output


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_second_signal_during_teardown_still_exits_2(
    pytester: pytest.Pytester, signum: signal.Signals, xdist: list[str]
) -> None:
    # The first signal while the test runs, the second in the session's last hook.
    output = _two_signals(pytester, xdist, signum, "teardown", "started")
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "interrupted", output
    assert run["finished"]


@pytest.mark.parametrize("signum", SIGNALS)
def test_two_signals_while_the_stage_starts_exit_2_and_leave_no_running_entry(
    pytester: pytest.Pytester, signum: signal.Signals, xdist: list[str]
) -> None:
    output = _two_signals(pytester, xdist, signum, "start", "starting")
    assert not (pytester.path / "started").exists(), "a test ran after the stage was stopped"
    ledger = pytester.path / ".pytest-release" / "ledger.json"
    runs = ledger_runs(pytester.path) if ledger.exists() else []
    # Stopped before it could record a start: nothing, or a finished 'interrupted'.
    assert [r["outcome"] for r in runs] in ([], ["interrupted"]), output
    assert "signal" in output

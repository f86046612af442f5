"""run_tool: a tool and its children never outlive the deadline or an interrupted stage
(real processes: sh and sleep)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import pytest

from pytest_release.system.processes import ProcessGroups, pid_alive, run_tool

# The child writes its PID, then waits far longer than any test.
TOOL = "sleep 300 & echo $! > child.pid; wait"


def _child_gone(path: Path) -> bool:
    pid = int(path.read_text().strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_finished_tool_reports_its_code_and_output(tmp_path: Path) -> None:
    run = run_tool(["sh", "-c", "echo out; echo err >&2; exit 3"], tmp_path, deadline=30)
    assert (run.returncode, run.stdout, run.stderr, run.timed_out) == (3, "out\n", "err\n", False)


def test_a_tool_past_its_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    run = run_tool(["sh", "-c", TOOL], tmp_path, deadline=1.0)
    assert run.timed_out
    assert run.returncode is None
    assert _child_gone(tmp_path / "child.pid")


def test_an_interrupted_wait_kills_the_tool_and_its_children(tmp_path: Path) -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("stage interrupted")

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            run_tool(["sh", "-c", TOOL], tmp_path, deadline=120)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _child_gone(tmp_path / "child.pid")


def test_a_tool_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        run_tool([str(tmp_path / "no-such-tool")], tmp_path, deadline=5)
    assert os.listdir(tmp_path) == []


def test_tools_run_from_threads_end_when_the_main_thread_kills_the_running_ones(
    tmp_path: Path,
) -> None:
    """The lint gate runs its tools from threads; an interrupt reaches the main thread,
    which ends every running tool (and its children); one started after that ends at
    once."""
    running = ProcessGroups()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(run_tool, ["sh", "-c", TOOL], tmp_path / "a", 120, running=running)
        deadline = time.monotonic() + 30
        while not (tmp_path / "a" / "child.pid").exists():
            assert time.monotonic() < deadline, "the tool did not start"
            time.sleep(0.05)
        running.kill_all()
        killed = first.result(timeout=30)
    assert killed.returncode is not None
    assert killed.returncode < 0
    assert _child_gone(tmp_path / "a" / "child.pid")
    late = run_tool(["sh", "-c", "sleep 300"], tmp_path / "b", 120, running=running)
    assert late.returncode is not None
    assert late.returncode < 0  # killed when started, not after its 300 s


def test_a_tool_sees_the_environment_it_is_given(tmp_path: Path) -> None:
    run = run_tool(["sh", "-c", 'echo "$MARK"'], tmp_path, 30, env={"MARK": "from-env"})
    assert run.stdout == "from-env\n"

"""Running the one external tool of a gate kind (newman, Locust): its finished run, or
why it gave none (it could not be started, or it was killed at its deadline), and the
end of its output for the messages.  What the kinds' runners share; finding the tool
and checking its flags is :mod:`.tool_command`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_release.system.processes import ToolRun, run_tool

# Characters of a tool's output a failed outcome keeps: enough for its last error.
TAIL_CHARS = 4000


@dataclass(frozen=True)
class ToolFailure:
    """Why the tool gave no result: ``problem``; when it was killed, the end of its
    output and how long it ran."""

    problem: str
    output: str = ""
    duration: float = 0.0


def run_gate_tool(
    argv: Sequence[str], cwd: Path, deadline: float, tool: str, killed: str, mark: str = "..."
) -> ToolRun | ToolFailure:
    """Run the tool (:func:`run_tool`: killed after ``deadline`` seconds).  A failure says
    ``cannot start <tool>: <error>``, or ``killed`` with the tool's output cut after
    ``mark`` (:func:`output_tail`)."""
    try:
        run = run_tool(argv, cwd, deadline)
    except OSError as exc:
        return ToolFailure(f"cannot start {tool}: {exc}")
    if run.timed_out:
        return ToolFailure(killed, output_tail(run.stderr or run.stdout, mark), run.duration)
    return run


def output_tail(text: str | None, mark: str = "...") -> str:
    """The output, stripped, cut to its last :data:`TAIL_CHARS` characters after ``mark``
    when longer."""
    text = (text or "").strip()
    return text if len(text) <= TAIL_CHARS else mark + text[-TAIL_CHARS:]

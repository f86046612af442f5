"""Parts of a stage's verdict that need the configuration: gates that selected nothing."""

from __future__ import annotations

from pathlib import Path

from pytest_release.ledger.stage_run import GateResult, StageRun


def gate_table(run: StageRun, gate: str) -> str:
    """The TOML table where ``gate`` is configured, as the user writes it."""
    prefix = "tool.pytest-release." if Path(run.config.source).name == "pyproject.toml" else ""
    return f"[{prefix}gates.{gate}]"


def empty_gate_problems(run: StageRun, gates: tuple[GateResult, ...]) -> list[str]:
    """One message per gate of a full run that selected no test and generated no item,
    unless it sets ``allow_empty``."""
    problems = []
    for result in gates:
        if result.total or result.status != "empty":
            continue
        gate = run.config.common[result.gate]
        if gate.allow_empty:
            continue
        selects = []
        if gate.paths:
            selects.append(f"paths: {', '.join(gate.paths)}")
        if gate.markers:
            selects.append(f"markers: {', '.join(gate.markers)}")
        if not selects:
            selects.append(f"kind {gate.kind}, no paths or markers")
        problems.append(
            f"gate '{result.gate}' selected no test; {'; '.join(selects)}; fix: add tests "
            f"(or @pytest.mark.gate('{result.gate}')) or set allow_empty = true in "
            f"{gate_table(run, result.gate)} ({run.config.source})"
        )
    return problems

"""The goal figures of the overhead benchmark in one table (issue 27), each measured in
the run that writes it: what was measured, the figure, the goal and whether it is met.

A goal whose measurement did not run (``--quick``, ``--no-real-suite``, no
``--instructions``) is listed as not measured, never as met."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from _common import Figure


@dataclass(frozen=True)
class Goal:
    what: str
    measured: str  # the figure as shown, "-" when not measured in this run
    goal: str
    met: bool | None  # None: not measured in this run


def ratio_goal(what: str, ratio: float | None, limit: float, detail: str = "") -> Goal:
    """A ratio to plain pytest that must stay at or below ``limit``."""
    if ratio is None:
        return Goal(what, "-", f"<= {limit:.2f}x", None)
    shown = f"{ratio:.3f}x" + (f" ({detail})" if detail else "")
    return Goal(what, shown, f"<= {limit:.2f}x", ratio <= limit)


def goal_table(figure: Figure, goals: Sequence[Goal]) -> None:
    """The goal table, first in the figure, and a summary line counting the goals met."""
    table = figure.table(
        "The goal figures, all measured in this run (ratios: stage to plain pytest, paired "
        "per round, median)",
        ["what", "measured", "goal", "met"],
    )
    figure.tables.insert(0, figure.tables.pop())
    for goal in goals:
        met = "not measured in this run" if goal.met is None else ("yes" if goal.met else "no")
        table.rows.append([goal.what, goal.measured, goal.goal, met])
    measured = [g for g in goals if g.met is not None]
    missed = [g.what for g in measured if not g.met]
    line = f"goals met: {len(measured) - len(missed)} of {len(measured)} measured"
    if missed:
        line += "; not met: " + "; ".join(missed)
    figure.summary.insert(0, line)
    figure.raw["goals"] = [
        {"what": g.what, "measured": g.measured, "goal": g.goal, "met": g.met} for g in goals
    ]

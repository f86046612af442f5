"""What a stage writes at its end, on the process that saw every report: JUnit, the
GitHub step summary and outputs, and the terminal summary.  A report that cannot be
written is an error line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_release.errors import LedgerError
from pytest_release.ledger.stage_run import shown_result
from pytest_release.report import github
from pytest_release.report.junit import not_run_case, write_junit

if TYPE_CHECKING:
    from pytest_release.gating.closing import GateTracker
    from pytest_release.ledger.ledger import Ledger, LedgerEntry
    from pytest_release.ledger.stage_run import StageOutcome, StageRun
    from pytest_release.report.junit import CaseRecorder
    from pytest_release.report.redact import Redactor


class StageSession(Protocol):
    """What the end of a stage reads from the stage session (which calls it: described
    here, not imported, so the two modules do not import each other)."""

    run: StageRun
    ledger: Ledger
    entry: LedgerEntry | None
    recorder: CaseRecorder
    tracker: GateTracker
    redact: Redactor
    startup_warnings: list[str]
    report_errors: list[str]


def keep_other_release(path: Path, release_id: str) -> tuple[Path, str] | None:
    """``reports/<stage>.xml`` always holds the latest run (CI readers look there); when the
    file there belongs to another release, it is kept as ``<stage>.<release>.xml`` instead
    of being overwritten.  Returns where it went and its release, or None."""
    if not path.is_file():
        return None
    previous = _release_of_report(path)
    if previous == release_id:
        return None
    target = path.with_name(f"{path.stem}.{re.sub(r'[^A-Za-z0-9._-]', '_', previous)}.xml")
    os.replace(path, target)
    return target, previous


def _release_of_report(path: Path) -> str:
    """The ``release_id`` property of a JUnit report, read up to where it is (the first
    suite's properties): a report of 60,000 cases is not parsed whole."""
    try:
        for _, element in ET.iterparse(path, events=("end",)):
            if element.tag == "property" and element.get("name") == "release_id":
                return str(element.get("value", ""))
            if element.tag == "testcase":
                element.clear()  # what is read is not kept
    except (ET.ParseError, OSError):
        return "unreadable"
    return "unknown"


def repoint_ledger(session: StageSession, moved: tuple[Path, str] | None) -> None:
    """Earlier ledger entries never point at this run's report: the entries of the release
    whose report was kept under another name point there; any other entry that named the
    same file says it was replaced (``details.report_replaced_by``)."""
    if session.entry is None:
        return
    report = session.run.relative(session.run.junit_path)
    me = session.entry.run_id

    def change(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for run in runs:
            if run.get("report") != report or run.get("run_id") == me:
                continue
            if moved is not None and run.get("release_id") == moved[1]:
                run["report"] = session.run.relative(moved[0])
            elif isinstance(run.get("details"), dict):
                run["details"].setdefault("report_replaced_by", me)
        return runs

    session.ledger.store.modify(change)


def write_stage_reports(session: StageSession, outcome: StageOutcome) -> None:
    """JUnit, step summary and outputs; a failure is reported, never a traceback."""
    # A stage that failed without a failing test (empty, interrupted, rolled back)
    # gets a failing case of its own so JUnit readers cannot show it green.
    failing_case = not outcome.passed and not any(g.failed for g in outcome.gates)
    # Finished cases are in the recorder's spool (written as they finished, in that
    # order); those still open are in memory, and the failing ones as well for GitHub.
    cases = {case.nodeid: case for case in session.recorder.open_cases()}
    for nodeid in session.tracker.not_run():
        # Never finished (maybe set up, then interrupted): not passed, whatever the
        # reports before the interrupt said.
        unfinished = not_run_case(
            session.run, nodeid, session.tracker.members[nodeid], outcome.result
        )
        started = cases.get(nodeid)
        if started is not None and started.outcome == "passed":
            started.outcome, started.message = unfinished.outcome, unfinished.message
        elif started is None:
            cases[nodeid] = unfinished
    try:
        moved = keep_other_release(session.run.junit_path, session.run.release_id)
        write_junit(
            session.run.junit_path,
            session.run,
            outcome.gates,
            cases.values(),
            session.redact,
            stage_failure=outcome.message if failing_case else None,
            spool=session.recorder.spool,
        )
    except OSError as exc:
        session.report_errors.append(
            f"the JUnit report {session.run.junit_path} could not be written: {exc}"
        )
    else:
        try:
            repoint_ledger(session, moved)
        except LedgerError as exc:
            session.report_errors.append(f"the ledger's report paths were not updated: {exc}")
    if not github.in_github_actions():
        return
    try:
        github.write_step_summary(
            github.step_summary(
                session.run,
                outcome,
                session.redact,
                [*session.recorder.failed, *cases.values()],
                artifact=github.reports_artifact(),
            )
        )
        github.write_outputs(
            {
                "stage": session.run.stage,
                "stage_result": outcome.result,
                "release_id": session.run.release_id,
                "junit": session.run.relative(session.run.junit_path),
            }
        )
    except OSError as exc:
        session.report_errors.append(
            f"the GitHub step summary or outputs could not be written: {exc}"
        )


def write_terminal_summary(session: StageSession, outcome: StageOutcome, tr: Any) -> None:
    """The stage's verdict, partial-run and error lines, one line per gate."""
    if github.in_github_actions():
        for line in github.error_annotations(
            session.recorder.reported(), session.run.stage, session.redact
        ):
            tr.write_line(line)
    tr.write_sep(
        "=",
        f"release stage {session.run.stage}: {shown_result(session.run, outcome)}",
        green=outcome.passed,
        red=not outcome.passed,
        bold=True,
    )
    if outcome.message:
        tr.write_line(session.redact(outcome.message))
    if outcome.partial:
        tr.write_line(
            f"partial run ({session.redact(outcome.partial)}): recorded as such, it satisfies "
            "no stage's requires",
            yellow=True,
        )
    for warning in session.startup_warnings:
        tr.write_line(warning, red=True, bold=True)
    for error in session.report_errors:
        tr.write_line(f"ERROR: {session.redact(error)}", red=True, bold=True)
    for g in outcome.gates:
        counts = f"{g.passed} passed, {g.failed} failed, {g.skipped} skipped, {g.closed} closed"
        counts += f", {g.xfailed} xfailed" if g.xfailed else ""
        extra = f" ({g.reason})" if g.reason else ""
        took = "" if g.status == "closed" else f" in {g.duration:.2f}s"  # closed: never ran
        tr.write_line(
            f"gate {g.gate}: {g.status}{extra} - {counts}{took}",
            green=g.status == "passed",
            red=g.status in ("failed", "closed", "interrupted"),
            yellow=g.status in ("skipped", "empty"),
        )
    tr.write_line(
        f"junit: {session.run.relative(session.run.junit_path)}  "
        f"ledger: {session.run.relative(session.run.ledger_path)}"
    )


def write_not_run_summary(stage: str, option: str, tr: Any) -> None:
    """A stage inspected with an option that runs no test (:mod:`.invocation`)."""
    tr.write_sep("=", f"release stage {stage}: not run, nothing recorded", yellow=True, bold=True)
    tr.write_line(
        f"{option} runs no test: no ledger entry, no report, no lock; run without it to "
        "run the stage"
    )

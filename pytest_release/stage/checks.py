"""What a stage checks before it starts (usage errors, exit 4, no ledger entry): the
required stages passed for this release, no earlier rollback failed, a rollout stage has
its release image, every report can be written; and which command-line arguments make the
run partial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from pytest_release.errors import LedgerError
from pytest_release.ledger.ledger import (
    abandoned_rollouts,
    rollback_failure_warning,
    unresolved_rollback_failure,
)
from pytest_release.report import github

if TYPE_CHECKING:
    from pytest_release.ledger.ledger import Ledger, LedgerEntry
    from pytest_release.ledger.stage_run import StageRun


class StageSession(Protocol):
    """What the checks read from the stage session (which calls them: described here,
    not imported, so the two modules do not import each other)."""

    run: StageRun
    ledger: Ledger
    startup_warnings: list[str]


def narrowing_args(config: pytest.Config) -> list[str]:
    """Command-line arguments that select less than the stage: test files and node ids.
    Directories are where the stage's tests live, not a narrower selection."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    narrowing = []
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        if not path.is_absolute():
            path = config.invocation_params.dir / path
        if "::" in arg or path.is_file():
            narrowing.append(arg)
    if not narrowing:
        return []
    shown = ", ".join(narrowing[:3]) + (
        f" and {len(narrowing) - 3} more" if len(narrowing) > 3 else ""
    )
    return [f"only {shown} given on the command line"]


def appendable(path: Path) -> bool:
    if path.is_dir():
        return False
    if path.exists():
        return os.access(path, os.W_OK)
    return path.parent.is_dir() and os.access(path.parent, os.W_OK | os.X_OK)


def check_requirements(session: StageSession) -> None:
    """Refuse to start unless the required stages passed for this release, and refuse
    a rollout while an earlier rollback failed (the service is on an unknown version)."""
    requires = session.run.stage_config.requires
    try:
        unmet = session.ledger.unmet_requirements(session.run.release_id, requires)
        entries = session.ledger.entries()
    except LedgerError as exc:
        raise pytest.UsageError(str(exc)) from None
    rollout = session.run.stage_config.rollout
    check_abandoned(session, entries)
    failure = unresolved_rollback_failure(entries)
    if failure is not None:
        warning = rollback_failure_warning(failure)
        if rollout is not None and rollout.action != "rollback":
            raise pytest.UsageError(
                f"stage '{session.run.stage}' refused: {warning} (ledger {session.ledger.location})"
            )
        session.startup_warnings.append(warning)
    if unmet and not session.run.override_requires:
        described = []
        for stage, latest in unmet:
            state = "has not run" if latest is None else f"last run {latest.outcome}"
            partial = [
                e
                for e in entries
                if e.release_id == session.run.release_id
                and e.stage == stage
                and (e.partial or e.only_gates is not None)
            ]
            if latest is None and partial:
                state = (
                    f"only partial runs ({len(partial)}), which satisfy no requirement: "
                    "run the whole stage"
                )
            described.append(f"'{stage}' ({state})")
        raise pytest.UsageError(
            f"stage '{session.run.stage}' requires {', '.join(described)} to have passed for "
            f"release {session.run.release_id} (ledger {session.ledger.location}); run the "
            "missing stage first, or pass --override-requires=REASON to run anyway "
            "(recorded in the ledger)"
        )


def check_release_image(session: StageSession) -> None:
    """A rollout stage that deploys or switches to the release image refuses to start
    without one: otherwise it would take the rollout lock and record a failure for a
    missing option. ``rollback`` returns to the previous version and needs none."""
    rollout = session.run.stage_config.rollout
    if rollout is None or rollout.action == "rollback" or session.run.image:
        return
    canary_gates = [
        g for g in session.run.plan.order if session.run.config.common[g].deploys_release_image
    ]
    if not canary_gates:
        return
    raise pytest.UsageError(
        f"stage '{session.run.stage}' (rollout action '{rollout.action}', gate "
        f"{', '.join(canary_gates)}) deploys the release image, but no image was given: pass "
        "--release-image=REF (or --image=REF, or release_image in the pytest ini options); "
        "for platform.type 'local-process' REF is the version the command template "
        "receives as {image}"
    )


def check_abandoned(session: StageSession, entries: list[LedgerEntry]) -> None:
    """Refuse every stage while a rollout stage lies abandoned (its lease expired), except
    the rollback stage of that release, which reconciles it (docs/outcomes.md)."""
    try:
        abandoned = abandoned_rollouts(session.ledger.store, entries)
    except LedgerError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not abandoned:
        return
    rollout = session.run.stage_config.rollout
    releases = {a.entry.release_id for a in abandoned if a.entry is not None}
    reconciles = (
        rollout is not None
        and rollout.action == "rollback"
        and releases <= {session.run.release_id}
    )
    warnings = "\n".join(a.warning() for a in abandoned)
    if not reconciles:
        raise pytest.UsageError(
            f"stage '{session.run.stage}' of release {session.run.release_id} refused: a "
            f"rollout stage was abandoned (ledger {session.ledger.location}):\n{warnings}"
        )
    session.startup_warnings.append(warnings)


def check_report_paths(session: StageSession) -> None:
    """Every report the stage writes at its end can be written: a usage error now,
    before any test runs, instead of a traceback after (and a ledger left running)."""
    reports = session.run.reports_dir
    problems = []
    if reports.exists() and not reports.is_dir():
        problems.append(f"the reports directory {reports} is a file (--reports-dir)")
    else:
        try:
            reports.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(f"the reports directory {reports} cannot be created: {exc}")
        else:
            if not os.access(reports, os.W_OK | os.X_OK):
                problems.append(f"the reports directory {reports} is not writable")
    junit = session.run.junit_path
    if junit.is_dir():
        problems.append(f"the JUnit report path {junit} is a directory")
    elif junit.exists() and not os.access(junit, os.W_OK):
        problems.append(f"the JUnit report {junit} is not writable")
    if github.in_github_actions():
        for variable in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
            target = os.environ.get(variable)
            if target and not appendable(Path(target)):
                problems.append(f"${variable} = {target!r} cannot be appended to")
    if problems:
        raise pytest.UsageError(
            f"stage '{session.run.stage}' cannot write its reports: "
            + "; ".join(problems)
            + ". Fix the path or pass --reports-dir=DIR (a writable directory)"
        )

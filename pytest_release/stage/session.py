"""The plugin object registered only when ``--stage`` is given.

Keeping every stage behaviour on this object (instead of module-level hooks that check
a flag) is what makes the plugin inert without ``--stage``.  Roles:

* every process: gate assignment at collection, closed-gate skips, redaction;
* the process that sees all reports (no xdist, or the xdist controller): tracking,
  ledger, JUnit, GitHub output, terminal summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import warnings
from collections.abc import Generator, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.errors import LedgerError, ReleaseError
from pytest_release.gating.closing import ClosedGatesFile, GateTracker
from pytest_release.gating.collect import assign_items, is_finalizer
from pytest_release.ledger.stage_run import StageOutcome, StageResult, StageRun
from pytest_release.report.gate_properties import CLOSED_PROPERTY
from pytest_release.report.redact import Redactor, mask_node_ids, secret_warnings
from pytest_release.stage.invocation import no_test_option
from pytest_release.stage.narrowing import (
    Uncollected,
    VisitedFiles,
    read_visited,
    uncollected_files,
)
from pytest_release.stage.report_prep import prepare_report
from pytest_release.stage.run_dir import WORKERINPUT_KEY, RunDir, membership_file
from pytest_release.stage.verdict import empty_gate_problems
from pytest_release.system.signals import StageSignals, signals_deferred
from pytest_release.workflow.sharding import release_shard

if TYPE_CHECKING:
    # Controller-only modules (ledger, JUnit, GitHub output): a worker never loads them.
    from pytest_release.ledger.ledger import Ledger, LedgerEntry
    from pytest_release.report.junit import CaseRecorder

STAGE_SESSION_NAME = "pytest-release-stage"
GATE_KEY = pytest.StashKey[str]()


def get_stage_session(config: pytest.Config) -> StageSession | None:
    """The running stage's session (its run, run dir, redactor, ``set_result``), or None
    without ``--stage``: the accessor gate plugins use."""
    session = config.pluginmanager.get_plugin(STAGE_SESSION_NAME)
    return session if isinstance(session, StageSession) else None


def require_stage_session(config: pytest.Config) -> StageSession:
    """The running stage's session; a :class:`ReleaseError` outside a stage (a gate's
    code called without ``--stage``)."""
    session = get_stage_session(config)
    if session is None:
        raise ReleaseError(
            "this runs only within a release stage: pass --stage=NAME (see --release-status)"
        )
    return session


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _uses_xdist(config: pytest.Config) -> bool:
    if not config.pluginmanager.hasplugin("xdist") or _is_worker(config):
        return False
    dist = getattr(config.option, "dist", "no")
    numprocesses = getattr(config.option, "numprocesses", None)
    tx = getattr(config.option, "tx", None)
    return dist != "no" and bool(numprocesses or tx)


class StageSession:
    def __init__(self, config: pytest.Config, run: StageRun) -> None:
        self.config = config
        self.is_worker = _is_worker(config)
        self.redact = Redactor.from_env(run.config.secrets)
        # A release id holding a secret is used masked everywhere (ledger, outputs, JUnit,
        # lookups of required stages), on every process alike.
        if self.redact(run.release_id) != run.release_id:
            run = dataclasses.replace(run, release_id=self.redact(run.release_id))
        self.run = run
        self.tracker = GateTracker(run.plan)
        if self.is_worker:
            workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
            self.run_dir = RunDir(Path(workerinput[WORKERINPUT_KEY]), owner=False)
        else:
            self.run_dir = RunDir.create()
        self.closed_file = ClosedGatesFile(self.run_dir.path / "closed-gates.json")
        self._closed_seen: dict[str, str | None] = {}  # worker: gate -> closed reason
        # Values that never need masking (gate names are the configuration's own keys).
        self._safe_values = frozenset(run.plan.order)
        self.uses_xdist = _uses_xdist(config)
        # pytest runs no test (--collect-only, --setup-plan, ...): the stage records nothing.
        self.runs_no_test = no_test_option(config)
        self.visited = VisitedFiles(run, config.getini("python_files"))
        self.shard = release_shard(config)  # "K/N" or None; checked here, kept in collect.py
        self._uncollected: list[Uncollected] | None = None
        self.collection_errors = 0
        # Set on the process that sees every report (the controller), never on a worker.
        self.recorder: CaseRecorder
        self.ledger: Ledger
        self.partial_args: list[str] = []
        if not self.is_worker:
            from pytest_release.ledger.ledger import Ledger, open_store
            from pytest_release.report.junit import CaseRecorder
            from pytest_release.report.junit_spool import CaseSpool
            from pytest_release.stage.checks import narrowing_args

            spool = CaseSpool(self.run_dir.path, self.redact)
            self.recorder = CaseRecorder(run, self.tracker.members, self.redact, spool)
            self.ledger = Ledger(
                open_store(run.config.ledger, run.ledger_path, run.rootdir, config.hook)
            )
            self.partial_args = narrowing_args(config)
        self.entry: LedgerEntry | None = None
        self.outcome: StageOutcome | None = None
        self.result_override: tuple[StageResult, str] | None = None
        self.signals = StageSignals()
        self.signals_received = self.signals.received
        self.startup_warnings: list[str] = []
        if not self.is_worker:
            self.startup_warnings += secret_warnings(run.config.secrets)
        self.report_errors: list[str] = []
        self._held = ExitStack()  # the rollout lock of a rollout stage

    # -- public API for gate plugins -----------------------------------------------------
    def set_result(self, result: StageResult, message: str) -> None:
        """Let a gate plugin record a non-default result (e.g. ``rolled-back``)."""
        self.result_override = (result, message)

    def record_details(self, details: dict[str, Any]) -> None:
        """Let a gate plugin add to the ledger entry's ``details`` (before it is finished)."""
        if self.entry is not None:
            from dataclasses import replace

            self.entry = replace(self.entry, details={**self.entry.details, **details})

    def add_secrets(self, values: Iterable[str]) -> None:
        """Mask ``values`` too, everywhere this session writes (gate plugins call it for
        secrets they read from their own settings, e.g. a Slack webhook)."""
        self.redact = self.redact.with_values(values)
        if not self.is_worker:
            self.recorder.redact = self.redact

    # -- start ---------------------------------------------------------------------------
    def check_requirements(self) -> None:
        """Refuse to start unless the required stages passed for this release, and refuse
        a rollout while an earlier rollback failed (:mod:`.stage_checks`)."""
        from pytest_release.stage.checks import check_requirements

        check_requirements(self)

    def check_release_image(self) -> None:
        """A rollout stage that deploys the release image is given one (:mod:`.stage_checks`)."""
        from pytest_release.stage.checks import check_release_image

        check_release_image(self)

    def check_report_paths(self) -> None:
        """Every report the stage writes at its end can be written (:mod:`.stage_checks`)."""
        from pytest_release.stage.checks import check_report_paths

        check_report_paths(self)

    def acquire_rollout_lock(self) -> None:
        """Rollout stages hold the ledger's rollout lock for the whole session, so two
        rollouts of one service never overlap."""
        if self.run.stage_config.rollout is None or self.runs_no_test:
            return
        owner = (
            f"stage {self.run.stage} of release {self.run.release_id}, pid {os.getpid()} "
            f"on {socket.gethostname()}"
        )
        try:
            self._held.enter_context(self.ledger.store.rollout_lock(owner))
        except LedgerError as exc:
            raise pytest.UsageError(f"cannot start stage '{self.run.stage}': {exc}") from None

    def pytest_configure(self, config: pytest.Config) -> None:
        # On registration (checks done, lock held): signals held from here (StageSignals).
        if not self.is_worker and not self.runs_no_test:
            self.signals.install()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.is_worker or self.runs_no_test:
            return
        if self.signals_received:
            # Stopped before it started: no entry to finish, so none is written.
            raise KeyboardInterrupt(f"received signal {self.signals_received[0]}")
        last_failed = self.config.pluginmanager.get_plugin("lfplugin")
        if self.config.getoption("lf", False) and getattr(last_failed, "lastfailed", None):
            # --lf collects only the tests that failed last time: nothing is deselected,
            # so say it now (the cache is rewritten at the end of the session).
            self.partial_args.append("only the last failed tests (--lf)")
        from pytest_release.ledger.ledger import LedgerEntry
        from pytest_release.report import github

        ci = github.run_context()
        self.entry = LedgerEntry.start(
            release_id=self.run.release_id,
            stage=self.run.stage,
            image=self._redacted(self.run.image),
            report=self.run.relative(self.run.junit_path),
            override_requires=self._redacted(self.run.override_requires),
            only_gates=list(self.run.plan.order) if self.run.partial else None,
            shard=self.shard,
            approval=self._approval(ci),
            ci=ci,
        )
        try:
            self.ledger.append(self.entry)
        except LedgerError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        # The first point after the start where an interrupt still ends the session with
        # pytest_sessionfinish (and so with the entry finished).
        if not self.is_worker and not self.runs_no_test:
            self.signals.arm()

    def _approval(self, ci: dict[str, str]) -> dict[str, str] | None:
        if not self.run.approved_via:
            return None
        from pytest_release.ledger.ledger import utc_now

        approval = {"via": self.redact(self.run.approved_via), "at": utc_now()}
        actor = ci.get("triggering_actor") or ci.get("actor") or os.environ.get("USER")
        if actor:
            approval["actor"] = actor
        if "run_url" in ci:
            approval["run"] = ci["run_url"]
        return approval

    def _redacted(self, text: str | None) -> str | None:
        return None if text is None else self.redact(text)

    @pytest.hookimpl(wrapper=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_ledger_error(
        self, session: pytest.Session
    ) -> Generator[None, Any, Any]:
        """A ledger that cannot be written at the end of the stage (corrupted, locked or
        made read-only while the tests ran) stops the stage with what, where and how to
        fix, and exit 1, instead of a traceback; the ledger is left as it is."""
        try:
            return (yield)
        except LedgerError as exc:
            terminal = session.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.ensure_newline()
            pytest.exit(
                f"pytest-release: stage '{self.run.stage}' ran, but its result could not be "
                f"recorded in the ledger: {exc}",
                returncode=max(int(session.exitstatus), 1),
            )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.signals.settle()
        self._held.close()
        self.run_dir.remove()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = [
            f"release stage: {self.run.stage} (gates: {' -> '.join(self.run.plan.order)})",
            f"release id: {self.run.release_id}",
            f"image: {self.redact(self.run.image or '(none)')}",
        ]
        if self.run.override_requires:
            lines.append(f"requires overridden: {self.redact(self.run.override_requires)}")
        if self.partial_args:
            lines.append(f"partial run: {'; '.join(self.partial_args)} (satisfies no requires)")
        lines += self.startup_warnings
        return lines

    # -- collection ----------------------------------------------------------------------
    def pytest_collect_file(self, file_path: Path) -> None:
        self.visited.visit(file_path)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        mask_node_ids(items, self.redact)
        members = assign_items(session, config, items, self.run)
        for item in items:
            item.stash[GATE_KEY] = members[item.nodeid]
        if self.is_worker:
            worker_id = config.workerinput["workerid"]  # type: ignore[attr-defined]
            finalizers = [item.nodeid for item in items if is_finalizer(item)]
            membership_file(self.run_dir.path, worker_id).write_text(
                json.dumps({"members": members, "finalizers": finalizers}), encoding="utf-8"
            )
            self.visited.write(self.run_dir.path, worker_id)
        else:
            self.tracker.set_members(members)

    # -- running -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not self.is_worker and not self.tracker.failed_gates:
            return  # no gate failed yet: none is closed (asked before every test)
        gate = item.stash.get(GATE_KEY, None)
        if gate is None:
            return
        reason = self._worker_closed(gate) if self.is_worker else self.tracker.closed_by(gate)
        if reason is not None:
            item.user_properties.append((CLOSED_PROPERTY, reason))
            pytest.skip(reason)

    def _worker_closed(self, gate: str) -> str | None:
        """Whether ``gate`` is closed, read once per gate: the controller decides it, and
        writes the file, before it lets the gate's first item start, and never changes
        it afterwards (:mod:`.xdist_scheduler`)."""
        if gate not in self._closed_seen:
            self._closed_seen[gate] = self.closed_file.read().get(gate)
        return self._closed_seen[gate]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        if (
            report.passed
            and not report.user_properties
            and not report.sections
            and report.longrepr is None
            and not hasattr(report, "wasxfail")
        ):
            return report  # most reports: nothing to mask or to move
        gate = item.stash.get(GATE_KEY, "")
        prepare_report(report, item, call, self.run, gate, self.redact, self._safe_values)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        if report.longrepr is not None:
            text = report.longreprtext
            clean = self.redact(text)
            if clean != text:
                report.longrepr = clean
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage) -> None:
        text = str(warning_message.message)
        clean = self.redact(text)
        if clean != text:
            # The category (printed by name) is kept; only the text is replaced.
            warning_message.message = UserWarning(clean)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.is_worker:
            self.collection_errors += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        gate = self.tracker.record(report)
        self.recorder.record(report, gate)

    # -- finish --------------------------------------------------------------------------
    def _partial_reason(self) -> str | None:
        """Why this run selected less than the whole stage, or None (``--gate`` is
        recorded separately as ``only_gates``)."""
        reasons = list(self.partial_args)
        deselected = self.tracker.deselected()
        if deselected:
            reasons.append(f"{deselected} item(s) deselected (-k, -m, --deselect, --lf)")
        reasons += [missing.describe() for missing in self.uncollected()]
        return "; ".join(reasons) or None

    def uncollected(self) -> list[Uncollected]:
        """Gate test files on disk this run did not collect (once, at the end; narrowing.py)."""
        if self._uncollected is None:
            visited = read_visited(self.run_dir.path) if self.uses_xdist else self.visited.files
            ini = self.config.getini
            self._uncollected = uncollected_files(
                self.run, visited, ini("python_files"), ini("norecursedirs")
            )
        return self._uncollected

    def _decide(self, session: pytest.Session, exitstatus: int) -> tuple[StageOutcome, int]:
        gates = self.tracker.results()
        partial = self._partial_reason()

        def outcome(result: StageResult, message: str = "") -> StageOutcome:
            return StageOutcome(result, gates, message, partial)

        total = sum(g.total for g in gates)
        not_run = self.tracker.not_run()
        if self.collection_errors:
            # pytest reports collection errors as "Interrupted"; the stage did not stop,
            # it could not start: that is a failure to fix, not an interruption.
            message = f"{self.collection_errors} error(s) during collection"
            return outcome("failed", message), int(pytest.ExitCode.TESTS_FAILED)
        if self.result_override is not None and self.result_override[0] == "rollback-failed":
            # The worst end: nothing may run on a service in an unknown state.
            return outcome("rollback-failed", self.result_override[1]), max(int(exitstatus), 1)
        stopped_by_failure = bool(session.shouldfail) or any(g.failed for g in gates)
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(self.signals_received)
        if (interrupted or not_run) and not stopped_by_failure:
            # A stage passes only when every selected item reported an outcome.
            message = "the stage was interrupted"
            if not_run:
                message += f": {len(not_run)} of {self.tracker.selected_count} item(s) never ran"
            if self.result_override is not None and self.result_override[0] == "rolled-back":
                message += f"; {self.result_override[1]}"
            code = exitstatus if exitstatus != pytest.ExitCode.OK else pytest.ExitCode.INTERRUPTED
            return outcome("interrupted", message), int(code)
        if self.result_override is not None:
            result, message = self.result_override
            code = exitstatus if result == "passed" else max(int(exitstatus), 1)
            return outcome(result, message), code
        failed = [g.gate for g in gates if g.status == "failed"]
        if failed:
            message = f"gate(s) failed: {', '.join(failed)}"
            if not_run:
                message += (
                    f"; {len(not_run)} item(s) not run after the first failure (-x/--maxfail)"
                )
            return outcome("failed", message), 1
        if total == 0 and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            # pytest's own code for a run that collected nothing (5); never a pass.
            empty = ", ".join(g.gate for g in gates)
            message = (
                f"stage '{self.run.stage}' selected no test: its gates are empty "
                f"({empty}); mark tests with @pytest.mark.gate(NAME) or set the gates' "
                f"'paths' in {self.run.config.source}"
            )
            return outcome("failed", message), int(pytest.ExitCode.NO_TESTS_COLLECTED)
        empty_gates = [] if partial or self.shard else empty_gate_problems(self.run, gates)
        if empty_gates:
            # A full run in which a gate found nothing: the gate cannot vouch for anything.
            return outcome("failed", "; ".join(empty_gates)), int(pytest.ExitCode.TESTS_FAILED)
        if exitstatus != pytest.ExitCode.OK:
            return outcome("failed", f"pytest exited with status {exitstatus}"), exitstatus
        return outcome("passed"), exitstatus

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.is_worker and not self.uses_xdist:
            self.tracker.set_selected(item.nodeid for item in session.items)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or self.runs_no_test:
            return
        # A signal now must not cut the record short: it is deferred (the stage is already
        # ending) and the ledger entry is finished first, then the reports.
        with signals_deferred(reraise=False) as late_signals:
            self._finish(session, int(exitstatus))
        self.signals_received += late_signals
        self.signals.recorded()

    def _finish(self, session: pytest.Session, exitstatus: int) -> None:
        outcome, code = self._decide(session, exitstatus)
        self.outcome = outcome
        try:
            session.config.hook.pytest_release_stage_finished(
                config=session.config, run=self.run, outcome=outcome
            )
        except Exception as exc:
            self.report_errors.append(f"a plugin failed at the end of the stage: {exc!r}")
            if outcome.passed:
                self.set_result("failed", f"a plugin failed at the end of the stage: {exc}")
        if self.result_override is not None and self.outcome.result != self.result_override[0]:
            outcome, code = self._decide(session, exitstatus)
            self.outcome = outcome
        if self.entry is not None:
            try:
                self.ledger.update(
                    self.entry.finish(
                        outcome.result,
                        outcome.gates,
                        self.redact(outcome.message),
                        partial=outcome.partial,
                    )
                )
            except LedgerError as exc:
                # The reports are still written; then the ledger wrapper stops the stage
                # with what, where and how to fix (exit 1).
                self._write_reports(outcome)
                session.exitstatus = max(code, 1)
                raise exc from None
        self._write_reports(outcome)
        if self.report_errors and code == 0:
            code = int(pytest.ExitCode.TESTS_FAILED)
        session.exitstatus = code

    def _write_reports(self, outcome: StageOutcome) -> None:
        from pytest_release.stage.report import write_stage_reports

        write_stage_reports(self, outcome)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.runs_no_test and not self.is_worker:
            from pytest_release.stage.report import write_not_run_summary

            write_not_run_summary(self.run.stage, self.runs_no_test, terminalreporter)
        if self.outcome is not None:
            from pytest_release.stage.report import write_terminal_summary

            write_terminal_summary(self, self.outcome, terminalreporter)


class XdistController:
    """xdist hooks of the controller; registered only when xdist is active."""

    def __init__(self, stage_session: StageSession, plugins: Sequence[str] = ()) -> None:
        self.stage_session = stage_session
        self.plugins = tuple(plugins)  # the stage's plugins: the workers register them
        self._plan: dict[str, Any] | None = None

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = str(self.stage_session.run_dir.path)
        # The run resolved and validated here, once: workers do not validate.
        if self._plan is None:
            from pytest_release.stage.worker_plan import worker_plan

            self._plan = worker_plan(self.stage_session.run, self.plugins) or {}
        if self._plan:
            from pytest_release.stage.worker_plan import PLAN_KEY

            node.workerinput[PLAN_KEY] = self._plan

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from pytest_release.gating.xdist_scheduler import GateScheduling

        s = self.stage_session
        return GateScheduling(config, log, s.tracker, s.run_dir.path, s.closed_file)

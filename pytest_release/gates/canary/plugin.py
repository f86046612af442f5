"""The ``canary`` gate's hooks: its kind, its items, and the end of its stage.

A gate of kind ``canary`` performs the rollout step of its stage
(``[tool.pytest-release.stages.<stage>.rollout]``) on the configured platform and router.
Its items are the steps of :mod:`pytest_release.canary.controller`, in order (the gate is
``serial``: one process, also under xdist); ``health@<t>`` items are the judged
intervals of the hold.  SIGINT/SIGTERM during the stage, or any other failure of the
stage, rolls back in :func:`pytest_release_stage_finished` on the process that records
the stage; the ledger says ``rolled-back`` (or ``interrupted``).
"""

from __future__ import annotations

import os
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.canary.controller import (
    STEPS_OF_ACTION,
    interval_windows,
    observed_steps,
    read_result,
)
from pytest_release.config.release import gate_location
from pytest_release.gates.canary.config import (
    KIND,
    CanaryGateConfig,
    canary_gates,
    observes,
    resolve_settings,
    rollout_config,
)
from pytest_release.gates.canary.finish import (
    final_rollback,
    notify,
    reconcile_abandoned,
    record_controller,
)
from pytest_release.gates.canary.items import CONTROLLERS, CanaryItem
from pytest_release.gates.gate_hooks import gate_kind_hooks
from pytest_release.stage.session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.gating.gate_node import GateNode
    from pytest_release.ledger.stage_run import StageOutcome, StageRun
    from pytest_release.stage.session import StageSession


def _offset(seconds: float) -> str:
    """``health@<t>`` labels: ``30s``, ``90s``, ``1m``, ``15m``."""
    return f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"


def _items(gate_node: GateNode, gate: CanaryGateConfig) -> list[pytest.Item]:
    run = gate_node.run
    rollout = rollout_config(run, gate_node.gate_name)
    settings = resolve_settings(gate_node.gate_name, gate, run)
    path, line = gate_location(run.config, gate_node.gate_name)
    items: list[pytest.Item] = []
    steps = (
        observed_steps(rollout.action, rollout.hold)
        if observes(settings)
        else STEPS_OF_ACTION[rollout.action]
    )
    for step in steps:
        windows = (
            [
                (f"health@{_offset(end)}", (start, end))
                for start, end in interval_windows(rollout.hold, rollout.interval)
            ]
            if step == "health"
            else [(step, None)]
        )
        for name, window in windows:
            items.append(
                CanaryItem.from_parent(
                    gate_node,
                    name=name,
                    step=step,
                    window=window,
                    source_path=path,
                    source_line=line,
                )
            )
    return items


pytest_release_gate_kinds, pytest_release_gate_items = gate_kind_hooks(
    KIND, CanaryGateConfig, _items
)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Check the canary gates' settings before the stage starts (a usage error, before the
    ledger records a run), and redact the Slack webhook everywhere (it is a secret even
    when not listed in ``secrets``)."""
    stage_session = get_stage_session(session.config)
    if stage_session is None:
        return
    extra = []
    for name, gate in canary_gates(stage_session.run):
        rollout_config(stage_session.run, name)
        settings = resolve_settings(name, gate, stage_session.run)
        if settings.slack is not None:
            extra.append(os.environ.get(settings.slack.webhook_env, ""))
            if settings.slack.webhook_url is not None:
                extra.append(settings.slack.webhook_url.get_secret_value())
    stage_session.add_secrets(extra)
    rollout = stage_session.run.stage_config.rollout
    if rollout is not None and rollout.action == "rollback" and not stage_session.is_worker:
        _decide_rollback_target(session.config)
    if rollout is not None and not stage_session.is_worker:
        _arm_dead_mans_switch(stage_session)


def _arm_dead_mans_switch(stage_session: StageSession) -> None:
    """Point the platform's watchdog at this stage's lease (local-process: the replica
    supervisor), so a canary this stage leaves behind when it dies loses its traffic."""
    from pathlib import Path

    lease = getattr(stage_session.ledger.store, "lease_path", None)
    if not isinstance(lease, Path):
        return
    import importlib

    from pytest_release.canary.registry import registry

    for name, gate in canary_gates(stage_session.run):
        settings = resolve_settings(name, gate, stage_session.run)
        watch = registry().platform(settings.platform.type).lease_watch
        if watch:  # the platform's registration names its watchdog
            module, _, function = watch.partition(":")
            getattr(importlib.import_module(module), function)(
                settings.platform, stage_session.run.rootdir, lease
            )


def _decide_rollback_target(config: pytest.Config) -> None:
    """What this rollback stage undoes, from the ledger (before the stage's own entry is
    written); a usage error when nothing names it (:mod:`.canary.rollback_target`)."""
    from pytest_release.canary.rollback_target import decide_rollback_target, write_target
    from pytest_release.config.options import ROLLBACK_TO, cli_or_ini
    from pytest_release.errors import ReleaseError

    stage_session = get_stage_session(config)
    if stage_session is None or stage_session.runs_no_test:
        return
    run = stage_session.run
    action_of = {
        name: stage.rollout.action
        for name, stage in run.config.stages.items()
        if stage.rollout is not None
    }
    try:
        target = decide_rollback_target(
            stage_session.ledger.entries(),
            run.release_id,
            action_of,
            image=run.image,
            to=cli_or_ini(config, ROLLBACK_TO),
            ledger_location=stage_session.ledger.location,
        )
    except ReleaseError as exc:
        raise pytest.UsageError(f"stage '{run.stage}' refused: {exc}") from None
    write_target(stage_session.run_dir.path, target)


def _judged(result: dict[str, Any]) -> str | None:
    """The judge's word on the stage: a failed look, insufficient evidence, or the stage
    verdict; None when the hold never judged (e.g. the deploy failed)."""
    if result.get("failed_intervals"):
        return "fail"
    if result.get("problem") == "insufficient evidence":
        return "insufficient"
    verdict = result.get("verdict")
    return str(verdict.get("verdict")) if isinstance(verdict, dict) else None


def pytest_release_stage_finished(
    config: pytest.Config, run: StageRun, outcome: StageOutcome
) -> None:
    gates = canary_gates(run)
    stage_session = get_stage_session(config)
    if not gates or run.stage_config.rollout is None or stage_session is None:
        return
    action = run.stage_config.rollout.action
    for name, gate in gates:
        try:
            settings = resolve_settings(name, gate, run)
        except pytest.UsageError:
            continue
        local = config.stash.get(CONTROLLERS, {}).get(name)
        if local is not None:
            if not local.reported:
                with suppress(Exception):
                    local.end_hold()
            local.stop()
        result = read_result(stage_session.run_dir.path, name)
        rolled_back = bool(result.get("rolled_back"))
        judged = _judged(result)
        if judged is not None:
            # The judge's verdict in the ledger: what the analysis server answers with.
            verdict = {"verdict": judged, "problem": result.get("problem")}
            stage_session.record_details({"canary_verdicts": {name: verdict}})
        details = ""
        if action == "rollback" and result.get("rollback_message"):
            # What the rollback stage undid and the end state it verified, in the ledger.
            record = stage_session.redact(str(result["rollback_message"]))
            stage_session.record_details({"rollback": record})
            if outcome.passed:
                reconciled = reconcile_abandoned(config, stage_session, record)
                if reconciled:
                    stage_session.record_details({"reconciled": reconciled})
        elif rolled_back and result.get("rollback_message"):
            # Under xdist the rollback items ran on a worker; the result is decided here.
            stage_session.set_result("rolled-back", str(result["rollback_message"]))
        keep = result.get("problem") == "insufficient evidence" and (
            not settings.rollback_on_insufficient
        )
        rollback_errors = [str(e) for e in result.get("rollback_errors") or []]
        if observes(settings):
            # Rollback is the controller's: the ledger says what it is doing instead.
            record_controller(config, stage_session, settings, run)
        elif not outcome.passed and action != "rollback" and not rolled_back and not keep:
            details, state = final_rollback(config, run, settings, outcome)
            rolled_back = state == "rolled-back"
            if rolled_back:
                # The end state was verified: earlier failed rollback steps were repaired.
                if rollback_errors:
                    details += f" (after failed rollback steps: {'; '.join(rollback_errors)})"
                rollback_errors = []
                stage_session.set_result("rolled-back", details)
            elif state == "failed":
                rollback_errors.append(details)
        if rollback_errors:
            # The service is on no known version: the worst end a stage can have.
            stage_session.set_result(
                "rollback-failed", "rollback failed: " + "; ".join(rollback_errors)
            )
        notify(config, stage_session, settings, outcome, result, rolled_back, details)


def pytest_unconfigure(config: pytest.Config) -> None:
    for controller in config.stash.get(CONTROLLERS, {}).values():
        controller.stop()

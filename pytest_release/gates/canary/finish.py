"""The end of a canary stage, on the process that records it.

A stage can end without its rollback steps having run: SIGINT/SIGTERM (the spine turns
SIGTERM into ``KeyboardInterrupt``), a crash, a failure outside the items.  Then the
platform and router state on disk is enough to roll back from here (any process can).
Slack is told ``passed``, ``failed`` or ``rolled-back`` with the failing value.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any, Literal

import pytest

from pytest_release.canary.rollout import ErrorBaseline
from pytest_release.system.signals import signals_deferred

if TYPE_CHECKING:
    from pytest_release.canary.settings import CanarySettings
    from pytest_release.ledger.stage_run import StageOutcome, StageRun
    from pytest_release.stage.session import StageSession


def say(config: pytest.Config, message: str, *, red: bool) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        # A closed terminal (CI cancelled, pipe gone) must not stop the ledger update.
        with suppress(OSError):
            reporter.write_line(f"canary: {message}", red=red, green=not red)


RollbackState = Literal["not-needed", "rolled-back", "failed"]


def final_rollback(
    config: pytest.Config, run: StageRun, settings: CanarySettings, outcome: StageOutcome
) -> tuple[str, RollbackState]:
    """Roll back what the stage left behind: (message, what happened)."""
    from pytest_release.canary.registry import build_rollout

    with signals_deferred(reraise=False):
        try:
            rollout = build_rollout(settings, run.rootdir)
            status = rollout.platform.status()
            needed = bool(status.group("canary")) or (
                rollout.previous_for(status, run.image) is not None
            )
            if not needed:
                return "", "not-needed"
            status = rollout.rollback(run.image)
            check = rollout.verify_main(
                None,
                None,
                settings.verify_requests,
                ErrorBaseline(fallback_rate=settings.judge.max_error_rate or 0.0),
            )
        except Exception as exc:
            message = f"rollback after '{outcome.result}' FAILED: {exc}"
            say(config, message, red=True)
            return message, "failed"
    message = (
        f"rolled back after the stage was {outcome.result}: traffic 100% to the main "
        f"deployment ({check.status.stable_image}, {len(check.status.group('stable'))} "
        f"replica(s)), canary removed, {check.requests} requests served"
    )
    say(config, message, red=False)
    return message, "rolled-back"


def record_controller(
    config: pytest.Config, session: StageSession, settings: CanarySettings, run: StageRun
) -> None:
    """An observing stage (platform.type = 'argo-rollouts') rolls nothing back: the ledger
    entry gets what the controller is doing at the end of the stage
    (``details.controller``; ``python -m pytest_release argo-status`` records it again
    once the controller acted on the verdict)."""
    from pytest_release.canary.observing import ObservingRollout
    from pytest_release.canary.registry import build_rollout

    try:
        rollout = build_rollout(settings, run.rootdir)
        assert isinstance(rollout, ObservingRollout)
        record = rollout.controller_record()
    except Exception as exc:
        record = {"error": f"the controller's state could not be read: {exc}"}
        say(config, record["error"], red=True)
    session.record_details({"controller": record})


def notify(
    config: pytest.Config,
    session: StageSession,
    settings: CanarySettings,
    outcome: StageOutcome,
    result: dict[str, Any],
    rolled_back: bool,
    details: str,
) -> None:
    if settings.slack is None:
        return
    from pytest_release.canary.judge import CanaryVerdict
    from pytest_release.canary.slack import SlackNotifier

    run = session.run
    verdict: CanaryVerdict | None = None
    failed = result.get("failed_intervals") or []
    if failed:
        verdict = CanaryVerdict.from_dict(failed[0])
    elif result.get("verdict"):
        verdict = CanaryVerdict.from_dict(result["verdict"])
    action = run.stage_config.rollout.action if run.stage_config.rollout else "canary"
    event: Literal["passed", "failed", "rolled-back"]
    if outcome.passed:
        event = "rolled-back" if action == "rollback" else "passed"
    elif rolled_back:
        event = "rolled-back"
    else:
        event = "failed"
    text = details or outcome.message or str(result.get("problem") or "")
    notifier = SlackNotifier(
        settings.slack, session.redact, warn=lambda m: say(config, m, red=True)
    )
    notifier.notify(
        event,
        stage=run.stage,
        release_id=run.release_id,
        image=run.image,
        verdict=verdict,
        details=text,
    )


def reconcile_abandoned(config: pytest.Config, session: StageSession, message: str) -> list[str]:
    """After a rollback stage passed: the abandoned rollouts of its release are recorded
    ``rolled-back`` (``details.abandoned``) and their leases removed; what was reconciled."""

    from pytest_release.ledger.ledger import abandoned_rollouts

    ledger = session.ledger
    reconciled = []
    for abandoned in abandoned_rollouts(ledger.store, ledger.entries()):
        entry = abandoned.entry
        if entry is not None and entry.release_id != session.run.release_id:
            continue
        lease = abandoned.lease
        if entry is not None:
            by = session.entry.run_id if session.entry is not None else "?"
            text = session.redact(
                f"abandoned: the stage process died without ending ({lease.describe()}); "
                f"reconciled by the rollback stage (run {by}): {message}"
            )
            ledger.update(abandoned.ended(entry, "rolled-back", text, by=by))
        ledger.store.settle(lease)
        reconciled.append(lease.describe())
        say(config, f"reconciled the abandoned rollout of {lease.describe()}", red=False)
    return reconciled

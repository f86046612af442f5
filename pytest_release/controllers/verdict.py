"""What a stage's latest ledger record says to a progressive-delivery controller: one word
that a controller's conditions can test, and the record's reasons.

``pass`` only for a stage that passed; ``fail`` for one that failed (a failing verdict, a
failed gate) or was rolled back; ``insufficient`` when the judge lacked evidence or the
stage was interrupted; ``running`` while the stage runs; ``none`` when no run of the stage
is recorded for the release. Only ``pass`` may let a controller go on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pytest_release.ledger.ledger import LedgerEntry

ControllerVerdict = Literal["pass", "fail", "insufficient", "running", "none"]
FAILED_OUTCOMES = ("failed", "rolled-back", "rollback-failed")


def judged_verdicts(entry: LedgerEntry) -> list[str]:
    """The judge's stage verdicts the canary gates recorded (``details.canary_verdicts``)."""
    recorded = entry.details.get("canary_verdicts") or {}
    return [str(v.get("verdict")) for v in recorded.values() if isinstance(v, dict)]


def controller_verdict(entry: LedgerEntry | None) -> ControllerVerdict:
    if entry is None:
        return "none"
    if entry.outcome == "running":
        return "running"
    judged = judged_verdicts(entry)
    if entry.outcome == "passed":
        # A passed stage whose judge said anything but pass is not a pass (never silent).
        return "pass" if all(v == "pass" for v in judged) else "insufficient"
    if entry.outcome == "interrupted":
        return "insufficient"
    if "fail" not in judged and "insufficient" in judged:
        return "insufficient"
    return "fail"


def verdict_document(stage: str, release_id: str, entry: LedgerEntry | None) -> dict[str, Any]:
    """The JSON answer (``jsonPath`` friendly: flat keys)."""
    verdict = controller_verdict(entry)
    document: dict[str, Any] = {"stage": stage, "release": release_id, "verdict": verdict}
    if entry is None:
        document["message"] = f"no run of stage {stage!r} is recorded for release {release_id!r}"
        return document
    document.update(
        outcome=entry.outcome,
        message=entry.message,
        run_id=entry.run_id,
        started=entry.started,
        finished=entry.finished,
        judged=entry.details.get("canary_verdicts") or {},
        gates={name: gate.get("status") for name, gate in entry.gates.items()},
    )
    return document

"""What a rollback stage undoes: the changes one release made, read from the ledger.

A rollback for release R must undo what R did and nothing else.  R's rollout stages in
the ledger say it: a ``promote`` (or ``bluegreen-switch``) stage means R may have put its
image on the main deployment, which then goes back to the version before it; canary
stages only mean R's canary goes, and the main deployment stays where it is (it runs a
release that passed).  With nothing recorded for R the stage refuses, unless
``--release-image`` (the image to take out of production) or ``--to`` (the image the
main deployment must run) names the target.

The target is decided once on the process that reads the ledger and written to the run
directory, where the rollback steps read it (under xdist they run on a worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.errors import ReleaseError
from pytest_release.system.atomic import read_json, write_json_atomic

if TYPE_CHECKING:
    from pytest_release.canary.platform import PlatformStatus
    from pytest_release.canary.rollout import MainCheck, Rollout
    from pytest_release.ledger.ledger import LedgerEntry

TARGET_FILE = "rollback-target.json"
# Actions that change the main deployment (the others only add a canary beside it).
MAIN_CHANGING_ACTIONS = ("promote", "bluegreen-switch")


class RollbackTargetUnknown(ReleaseError):
    """Nothing says what the rollback stage should undo."""


@dataclass(frozen=True)
class RollbackTarget:
    """What the rollback stage undoes, and why (``source``, recorded in the ledger)."""

    release_id: str
    image: str | None  # the release's image (what goes out of production)
    promoted: bool  # the release may have changed the main deployment
    to: str | None = None  # the main deployment's image, named by --to
    source: str = ""

    def main_target(
        self,
        status: PlatformStatus,
        previous_for: Callable[[PlatformStatus, str | None], str | None],
    ) -> str | None:
        """The image the main deployment must run after the rollback (its current one when
        the release never changed it)."""
        if self.to is not None:
            return self.to
        if not self.promoted:
            return status.stable_image
        return previous_for(status, self.image) or status.stable_image

    def describe(self) -> str:
        if self.to is not None:
            return f"main deployment to {self.to} (--to), canary removed"
        if self.promoted:
            return (
                f"release {self.release_id} changed the main deployment ({self.source}): main "
                f"back from {self.image} to the version before it, canary removed"
            )
        return (
            f"release {self.release_id} never changed the main deployment ({self.source}): "
            "only its canary is removed, main stays as it is"
        )


def decide_rollback_target(
    entries: Iterable[LedgerEntry],
    release_id: str,
    action_of: Mapping[str, str],
    *,
    image: str | None,
    to: str | None,
    ledger_location: str,
) -> RollbackTarget:
    """The target of a rollback of ``release_id`` from its ledger entries (``action_of``:
    each configured stage's rollout action); :class:`RollbackTargetUnknown` when nothing
    names it, or :class:`ReleaseError` when ``image`` contradicts the ledger."""
    rollouts = [
        e
        for e in entries
        if e.release_id == release_id and action_of.get(e.stage) not in (None, "rollback")
    ]
    recorded = [e.image for e in rollouts if e.image]
    if recorded and image is not None and image not in recorded:
        raise ReleaseError(
            f"--release-image={image} is not what release {release_id} rolled out "
            f"({', '.join(sorted(set(recorded)))} in the ledger {ledger_location}); pass the "
            "release's own image, or the --release-id of the release that rolled out "
            f"{image}, or --to=REF to name the main deployment's image yourself"
        )
    if to is not None:
        return RollbackTarget(release_id, image or (recorded[-1] if recorded else None), True, to)
    if rollouts:
        changed = [e for e in rollouts if action_of.get(e.stage) in MAIN_CHANGING_ACTIONS]
        runs = ", ".join(f"{e.stage} {e.outcome}" for e in rollouts)
        return RollbackTarget(
            release_id,
            image or (recorded[-1] if recorded else None),
            promoted=bool(changed),
            source=f"ledger: {runs}",
        )
    if image is not None:
        # Nothing recorded: the main deployment goes back only if it runs this image.
        return RollbackTarget(release_id, image, True, source="--release-image, no ledger entry")
    raise RollbackTargetUnknown(
        f"the ledger {ledger_location} records no rollout of release {release_id}, so "
        "nothing says what to undo. Pass --release-id of the release to roll back, or "
        "--release-image=REF (the image to take out of production: the main deployment "
        "returns to the version before it only if it runs REF), or --to=REF (the image the "
        "main deployment must run)"
    )


def write_target(run_dir: Path, target: RollbackTarget) -> None:
    write_json_atomic(run_dir / TARGET_FILE, asdict(target))


def read_target(run_dir: Path) -> RollbackTarget | None:
    """The target decided for this stage, or None (a stage that is not a rollback)."""
    data = read_json(run_dir / TARGET_FILE)
    if not isinstance(data, dict):
        return None
    return RollbackTarget(
        release_id=str(data["release_id"]),
        image=data.get("image"),
        promoted=bool(data["promoted"]),
        to=data.get("to"),
        source=str(data.get("source", "")),
    )


def main_target_of(run_dir: Path, rollout: Rollout, image: str | None) -> str | None:
    """The main deployment's image after this rollback stage (see :class:`RollbackTarget`);
    without a decided target, the version before ``image`` if main runs it."""
    status = rollout.platform.status()
    target = read_target(run_dir)
    if target is None:
        return rollout.previous_for(status, image) or status.stable_image
    return target.main_target(status, rollout.previous_for)


def rollback_record(run_dir: Path, check: MainCheck, props: list[tuple[str, str]]) -> str:
    """What the rollback stage undid and the end state it verified (ledger and JUnit)."""
    target = read_target(run_dir)
    undid = target.describe() if target is not None else "main back to its previous version"
    props.append(("rollback.target", undid))
    return (
        f"{undid}; verified: main deployment on {check.status.stable_image} "
        f"({len(check.status.group('stable'))} replica(s)), 100% of the traffic, no canary, "
        f"{check.requests} requests served"
    )

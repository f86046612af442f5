"""The most recent releases of a ledger, newest first (``pytest --release-status`` without
``--release-id`` when nothing is recorded under the default id).

The default release id is the commit (``$GITHUB_SHA`` or ``git rev-parse HEAD``), but a
release is often recorded under another id (``scripts/pipeline.py`` uses ``<sha12>-<n>``,
CI an image tag): listing what the ledger holds tells the user which id to ask for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pytest_release.ledger.ledger import LedgerEntry

# Enough to find the release just run; the full table of one is --release-id=ID.
RECENT_RELEASES_SHOWN = 10


@dataclass(frozen=True)
class ReleaseSummary:
    """One release of the ledger: its stages' last outcomes in the order they first ran."""

    release_id: str
    last_started: str
    outcomes: tuple[tuple[str, str], ...]  # (stage, outcome of its last run)

    @property
    def outcome(self) -> str:
        """The release's state in a word: the last stage's outcome when every stage
        passed, else the first stage that did not pass, with its outcome."""
        for stage, outcome in self.outcomes:
            if outcome != "passed":
                return f"{stage} {outcome}"
        return f"{self.outcomes[-1][0]} passed"


def recent_releases(
    entries: Iterable[LedgerEntry], limit: int = RECENT_RELEASES_SHOWN
) -> list[ReleaseSummary]:
    """The ``limit`` releases whose latest stage run started last, newest first."""
    by_release: dict[str, dict[str, LedgerEntry]] = {}
    # Start times have one-second resolution: runs started within the same second are
    # ordered by where the ledger appended them (it appends in the order runs start).
    last_position: dict[str, int] = {}
    for position, entry in enumerate(entries):
        stages = by_release.setdefault(entry.release_id, {})
        stages[entry.stage] = entry  # ledger order: the later run of a stage wins
        last_position[entry.release_id] = position
    summaries = [
        ReleaseSummary(
            release_id=release_id,
            last_started=max(e.started for e in stages.values()),
            outcomes=tuple((stage, _shown_outcome(e)) for stage, e in stages.items()),
        )
        for release_id, stages in by_release.items()
    ]
    summaries.sort(key=lambda s: (s.last_started, last_position[s.release_id]), reverse=True)
    return summaries[:limit]


def _shown_outcome(entry: LedgerEntry) -> str:
    partial = " (partial)" if entry.only_gates is not None or entry.partial else ""
    return f"{entry.outcome}{partial}"


def format_recent_releases(
    entries: list[LedgerEntry], default_id: str | None, limit: int = RECENT_RELEASES_SHOWN
) -> str:
    """The lines ``--release-status`` prints when no release id was given and the default
    id (``default_id``; None when it cannot be determined) has no stage recorded."""
    where = (
        f"no stage has run for release {default_id} (the default id: $GITHUB_SHA, else "
        "`git rev-parse HEAD`)"
        if default_id is not None
        else "no --release-id given and no default id ($GITHUB_SHA unset, not a git checkout)"
    )
    releases = recent_releases(entries, limit)
    if not releases:
        return f"{where}; the ledger records no release yet"
    total = len({e.release_id for e in entries})
    shown = f"the {len(releases)} most recent of {total}" if total > len(releases) else "all"
    lines = [
        f"{where}; {shown} releases in the ledger, newest first:",
        f"  {'release':<24} {'last run started':<26} {'outcome':<24} stages",
    ]
    for release in releases:
        stages = ", ".join(f"{stage} {outcome}" for stage, outcome in release.outcomes)
        lines.append(
            f"  {release.release_id:<24} {release.last_started:<26} {release.outcome:<24} {stages}"
        )
    lines.append("one release in full: pytest --release-status --release-id=ID")
    return "\n".join(lines)

"""``pytest --release-status`` without ``--release-id`` (issue 30, item 2).

The default id is the commit, while releases are often recorded under another id (the
pipeline's ``<sha12>-<n>``, an image tag): with nothing under the default id, the status
lists the ledger's most recent releases, newest first, bounded, so the user sees which id
to ask for.
"""

from __future__ import annotations

import pytest

from pytest_release.ledger.ledger import LedgerEntry
from pytest_release.ledger.recent_releases import RECENT_RELEASES_SHOWN, recent_releases
from tests.support.pipelines import stages_of_gates
from tests.support.spine import project, run_stage

TWO_STAGES = stages_of_gates(
    {"first": "tests/first/*", "second": "tests/second/*"},
    {"one": ["first", "second"], "two": ["second"]},
)


def _project(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        TWO_STAGES,
        **{
            "tests/first/test_f.py": "import os\n"
            "def test_f(): assert os.environ.get('FAIL_FIRST') != '1'\n",
            "tests/second/test_s.py": "def test_s(): pass\n",
        },
    )


def test_status_without_release_id_lists_recent_releases_newest_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester)
    monkeypatch.delenv("GITHUB_SHA", raising=False)  # pytester's directory is no git checkout
    assert run_stage(pytester, "one", release="rel-a").ret == 0
    assert run_stage(pytester, "two", release="rel-a").ret == 0
    monkeypatch.setenv("FAIL_FIRST", "1")
    assert run_stage(pytester, "one", release="rel-b").ret == 1
    monkeypatch.delenv("FAIL_FIRST")
    assert run_stage(pytester, "one", "--gate=second", release="rel-c").ret == 0

    status = pytester.runpytest_subprocess("--release-status")
    assert status.ret == 0, status.stderr.str()
    out = status.stdout.str()
    assert "no --release-id given and no default id" in out
    assert "all releases in the ledger, newest first" in out
    status.stdout.fnmatch_lines(
        [
            "*release*last run started*outcome*stages",
            "*rel-c *one passed (partial)*one passed (partial)",
            "*rel-b *one failed*one failed",
            "*rel-a *two passed*one passed, two passed",
            "one release in full: pytest --release-status --release-id=ID",
        ]
    )

    # A default id ($GITHUB_SHA) with nothing recorded under it: the same list, and says so.
    monkeypatch.setenv("GITHUB_SHA", "0123abcd")
    status = pytester.runpytest_subprocess("--release-status")
    assert status.ret == 0
    status.stdout.fnmatch_lines(["no stage has run for release 0123abcd (the default id*"])
    assert "rel-a" in status.stdout.str()

    # The default id has runs: its table, as before.
    assert run_stage(pytester, "one", release="0123abcd").ret == 0
    status = pytester.runpytest_subprocess("--release-status")
    status.stdout.fnmatch_lines(["release 0123abcd:", "*one*passed*"])
    assert "rel-a" not in status.stdout.str()

    # An explicit id with no runs is not replaced by the list: the user asked for that one.
    status = pytester.runpytest_subprocess("--release-status", "--release-id=nothing")
    status.stdout.fnmatch_lines(["release nothing: no stage has run yet"])
    assert "rel-a" not in status.stdout.str()


def test_status_without_release_id_on_an_empty_ledger_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    status = pytester.runpytest_subprocess("--release-status")
    assert status.ret == 0, status.stderr.str()
    status.stdout.fnmatch_lines(["*; the ledger records no release yet"])


def test_recent_releases_are_bounded_and_ordered_by_their_latest_run() -> None:
    entries = [
        LedgerEntry(
            run_id=f"run{i}",
            release_id=f"r{i}",
            stage="uat",
            outcome="passed",
            started=f"2026-12-06T10:{i:02d}:00+00:00",
        )
        for i in range(RECENT_RELEASES_SHOWN + 5)
    ]
    # r0's second stage ran last of all: it is the newest release.
    entries.append(
        LedgerEntry(
            run_id="late",
            release_id="r0",
            stage="smoke",
            outcome="rolled-back",
            started="2026-12-06T11:00:00+00:00",
        )
    )
    shown = recent_releases(entries)
    assert len(shown) == RECENT_RELEASES_SHOWN
    assert [s.release_id for s in shown[:3]] == [
        "r0",
        f"r{RECENT_RELEASES_SHOWN + 4}",
        f"r{RECENT_RELEASES_SHOWN + 3}",
    ]
    assert shown[0].outcome == "smoke rolled-back"
    assert shown[0].outcomes == (("uat", "passed"), ("smoke", "rolled-back"))


def test_runs_started_within_the_same_second_are_ordered_by_the_ledger() -> None:
    # Start times have one-second resolution: CI saw rel-a's second stage and rel-b's run
    # share a second, and the release the ledger recorded later must still come first.
    def run(run_id: str, release_id: str, stage: str) -> LedgerEntry:
        return LedgerEntry(
            run_id=run_id,
            release_id=release_id,
            stage=stage,
            outcome="passed",
            started="2026-12-07T03:18:57+00:00",
        )

    entries = [run("1", "rel-a", "one"), run("2", "rel-a", "two"), run("3", "rel-b", "one")]
    assert [s.release_id for s in recent_releases(entries)] == ["rel-b", "rel-a"]
    entries.append(run("4", "rel-a", "three"))
    assert [s.release_id for s in recent_releases(entries)] == ["rel-a", "rel-b"]

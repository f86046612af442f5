"""Catalogue: bad files, and leftovers of refused runs (issue 16, items 8 and 10).

Every case ends with what was wrong, where and how to fix it: exit 4 before the stage
starts, or exit 1 when tests already ran; never an INTERNALERROR or a traceback, and a
bad ledger is left byte for byte as it was.

Cases (test -> what):

* ``test_release_config_that_is_not_a_toml_file`` — ``--release-config`` naming a
  directory, an empty path, a non-UTF-8 file or a binary file.
* ``test_non_utf8_ledger_is_refused_and_untouched`` — a ledger that is not UTF-8.
* ``test_malformed_ledger_entries_are_refused_and_untouched`` — entries that are not
  objects, miss fields, or have fields of the wrong type (they used to be rewritten).
* ``test_read_only_ledger_directory`` — the ledger's directory cannot be written.
* ``test_ledger_lock_held_longer_than_the_timeout`` — another process holds the ledger's
  write lock longer than ``ledger.lock_timeout``.
* ``test_ledger_corrupted_mid_run`` — the ledger broken between the stage's start entry
  and its finish: exit 1 with the message, the broken file left as it is.
* ``test_release_status_over_malformed_entries`` — ``--release-status`` on such a ledger.
* ``test_refused_runs_leave_no_temp_dir`` — a run refused before the stage starts
  leaked an empty ``pytest-release-*`` temp dir.
* ``test_teardown_respects_a_live_rollout`` — ``python -m pytest_release.canary.teardown``
  ended the platform under a running rollout; now it needs the rollout lock or ``--force``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from tests.support.pipelines import CI, UNIT_TEST
from tests.support.spine import project, run_stage, run_teardown

LEDGER = Path(".pytest-release") / "ledger.json"


def assert_clean_error(result: pytest.RunResult, code: int, *lines: str) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == code, output
    assert "INTERNALERROR" not in output, output
    assert "Traceback" not in output, output
    result.stderr.fnmatch_lines(list(lines))


def write_ledger(root: Path, content: bytes) -> Path:
    path = root / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def ledger_document(runs: list[object]) -> bytes:
    return json.dumps({"format": "pytest-release/ledger", "version": 1, "runs": runs}).encode()


# -- the release configuration ----------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "conf",
            None,
            "*release configuration *conf is a directory, not a file; pass the path of a TOML "
            "file to --release-config*",
        ),
        ("", None, "*--release-config is empty; pass the path of a TOML file*"),
        (
            "latin1.toml",
            "[stages.ci]\ngates = ['unit']\ndescription = 'caf\xe9'\n".encode("latin-1"),
            "*release configuration file *latin1.toml is not UTF-8 text (byte 0xe9 at offset "
            "*): it must be a TOML file saved as UTF-8*",
        ),
        (
            "image.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
            "*release configuration file *image.png is not UTF-8 text (byte 0x89 at offset 0)*",
        ),
    ],
    ids=["directory", "empty", "non-utf8", "binary"],
)
def test_release_config_that_is_not_a_toml_file(
    pytester: pytest.Pytester, name: str, content: bytes | None, expected: str
) -> None:
    project(pytester, CI, **UNIT_TEST)
    if name and content is None:
        (pytester.path / name).mkdir()
    elif content is not None:
        (pytester.path / name).write_bytes(content)
    result = run_stage(pytester, "ci", f"--release-config={name}")
    assert_clean_error(result, pytest.ExitCode.USAGE_ERROR, expected)
    assert not (pytester.path / LEDGER).exists()


# -- the ledger -------------------------------------------------------------------------
def test_non_utf8_ledger_is_refused_and_untouched(pytester: pytest.Pytester) -> None:
    project(pytester, CI, **UNIT_TEST)
    content = ledger_document([])[:-2] + b"\xff\xfe]}"
    path = write_ledger(pytester.path, content)
    assert_clean_error(
        run_stage(pytester, "ci"),
        pytest.ExitCode.USAGE_ERROR,
        "*the ledger *ledger.json is corrupt (not UTF-8 text: byte 0xff at offset *); it was "
        "left untouched. Restore it from a backup*",
    )
    assert path.read_bytes() == content


GOOD_ENTRY = {
    "run_id": "abc",
    "release_id": "r0",
    "stage": "ci",
    "outcome": "passed",
    "started": "2026-12-01T00:00:00+00:00",
}


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ([GOOD_ENTRY, 42], "*runs[[]1] = 42: not an object*"),
        (
            [{"stage": "ci", "outcome": "passed"}],
            "*runs[[]0] = *: misses run_id, release_id, started*",
        ),
        ([{**GOOD_ENTRY, "gates": "unit"}], '*runs[[]0].gates = "unit": expected an object*'),
        ([{**GOOD_ENTRY, "stage": None}], "*runs[[]0].stage = null: expected a string*"),
    ],
    ids=["not-an-object", "missing-fields", "gates-not-an-object", "stage-null"],
)
def test_malformed_ledger_entries_are_refused_and_untouched(
    pytester: pytest.Pytester, runs: list[object], expected: str
) -> None:
    # Stage ci requires nothing: the ledger was only read to append the start entry, which
    # kept the bad entries and rewrote the file (then failed at the end with a traceback).
    project(pytester, CI, **UNIT_TEST)
    content = ledger_document(runs)
    path = write_ledger(pytester.path, content)
    assert_clean_error(
        run_stage(pytester, "ci"),
        pytest.ExitCode.USAGE_ERROR,
        "*the ledger *ledger.json has 1 malformed entry; it was left untouched:",
        expected,
        "Repair or remove these entries*",
    )
    assert path.read_bytes() == content


@pytest.fixture
def read_only_dir(pytester: pytest.Pytester) -> Iterator[Path]:
    """``.pytest-release`` that nobody may write into (root too: the immutable flag)."""
    directory = pytester.path / ".pytest-release"
    directory.mkdir()
    directory.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot make a directory read-only for root: {done.stderr!r}")
        immutable = True
    try:
        yield directory
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(0o755)


ROLLOUT = "[stages.ci.rollout]\naction = 'promote'\nreplicas = 1\nhold = 0\n"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (CI, "*cannot write the ledger *ledger.json: * not permitted*"),
        (CI + ROLLOUT, "*cannot take the rollout lock *ledger.json.rollout.lock: * not permitted*"),
    ],
    ids=["stage", "rollout-stage"],
)
def test_read_only_ledger_directory(
    pytester: pytest.Pytester, read_only_dir: Path, toml: str, expected: str
) -> None:
    project(pytester, toml, **UNIT_TEST)
    assert_clean_error(
        run_stage(pytester, "ci"),
        pytest.ExitCode.USAGE_ERROR,
        expected + "; make *.pytest-release writable, or point --ledger (ledger.path) at a "
        "writable place*",
    )
    assert list(read_only_dir.iterdir()) == []


def test_ledger_lock_held_longer_than_the_timeout(pytester: pytest.Pytester) -> None:
    project(pytester, CI + '[ledger]\nlock_timeout = "1s"\n', **UNIT_TEST)
    content = ledger_document([GOOD_ENTRY])
    path = write_ledger(pytester.path, content)
    with FileLock(str(path) + ".lock"):
        result = run_stage(pytester, "ci")
    assert_clean_error(
        result,
        pytest.ExitCode.USAGE_ERROR,
        "*the ledger lock *ledger.json.lock was held by another process for more than 1s*"
        "raise ledger.lock_timeout*",
    )
    assert path.read_bytes() == content


def test_ledger_corrupted_mid_run(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        CI,
        **{
            "tests/unit/test_u.py": """
                from pathlib import Path
                def test_breaks_the_ledger():
                    Path(".pytest-release/ledger.json").write_text("{half a ledger")
            """
        },
    )
    result = run_stage(pytester, "ci", *xdist)
    assert_clean_error(
        result,
        pytest.ExitCode.TESTS_FAILED,
        "*stage 'ci' ran, but its result could not be recorded in the ledger: the ledger "
        "*ledger.json is corrupt (not valid JSON*left untouched*",
    )
    assert (pytester.path / LEDGER).read_text() == "{half a ledger"


def test_release_status_over_malformed_entries(pytester: pytest.Pytester) -> None:
    project(pytester, CI, **UNIT_TEST)
    content = ledger_document([GOOD_ENTRY, {"release_id": "r0", "gates": []}])
    path = write_ledger(pytester.path, content)
    result = pytester.runpytest_subprocess("--release-status", "--release-id=r0")
    assert_clean_error(
        result,
        pytest.ExitCode.USAGE_ERROR,
        "*the ledger *ledger.json has 1 malformed entry*",
        "*runs[[]1] = *: misses run_id, stage, outcome, started*",
    )
    assert path.read_bytes() == content


# -- leftovers --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "refusal",
    ["requires-unmet", "ledger-malformed", "rollout-locked"],
)
def test_refused_runs_leave_no_temp_dir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    # Refused before the stage's session is registered (requires, rollout lock) and after
    # (the ledger refuses the start entry at session start).
    toml = (
        CI
        + {
            "requires-unmet": 'requires = ["uat"]\n',
            "ledger-malformed": "",
            "rollout-locked": ROLLOUT,
        }[refusal]
    )
    project(pytester, toml, **UNIT_TEST)
    ledger = write_ledger(
        pytester.path, ledger_document([42] if refusal == "ledger-malformed" else [])
    )
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    with FileLock(str(ledger) + ".rollout.lock"):
        result = run_stage(pytester, "ci")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert [p.name for p in tmp.iterdir() if p.name.startswith("pytest-release-")] == []


def teardown_command(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_teardown(root, *args, cwd=root, timeout=120)


def test_teardown_respects_a_live_rollout(tmp_path: Path) -> None:
    state = tmp_path / ".pytest-release" / "canary" / "platform.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"type": "local-process", "stable": [], "canary": []}))
    ledger = tmp_path / LEDGER
    (tmp_path / ".pytest-release" / "ledger.json.rollout.owner").write_text(
        "stage canary-1 of release r1, pid 4242 on ci"
    )
    with FileLock(str(ledger) + ".rollout.lock", timeout=0):
        refused = teardown_command(tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "a rollout stage is running" in refused.stderr
        assert "stage canary-1 of release r1, pid 4242 on ci" in refused.stderr
        assert "pass --force to tear down anyway" in refused.stderr
        assert state.exists()
        forced = teardown_command(tmp_path, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert not state.exists()

"""``python -m pytest_release analysis-server``: the verdict of real canary stages (local
platform, real HAProxy and replica processes), read from the ledger they wrote, as the
JSON the Argo Rollouts ``web`` provider tests: ``pass`` only for a stage the judge passed,
``fail`` for a failing look, ``insufficient`` (meeting neither generated condition, so the
AnalysisRun is Inconclusive) for a stage without enough evidence, even though it was
rolled back."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_release.controllers.verdict import controller_verdict
from pytest_release.ledger import LedgerEntry
from tests.canary.canary_support import (
    bootstrap_main,
    canary_root,
    canary_toml,
    load_through,
    new_port,
)
from tests.spine_support import ledger_runs, project, run_stage

__all__ = ["canary_root"]


@contextmanager
def analysis_server(root: Path) -> Iterator[str]:
    """The server on a free port of 127.0.0.1, ended by its PID afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_release", "analysis-server", "--port", "0"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until it listens (or exits)
        assert line.startswith("analysis-server listening on "), line + (
            process.stderr.read() if process.poll() is not None and process.stderr else ""
        )
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return dict(json.load(response))


def test_a_passed_stage_is_pass_and_an_unrecorded_one_is_none(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = new_port()
    project(pytester, canary_toml(router_port=port))
    bootstrap_main(canary_root, port)
    with analysis_server(canary_root) as url:
        before = _get(f"{url}/verdict/canary-1?release=r1")
        result = run_stage(pytester, "canary-1", "--image=v2")
        assert result.ret == 0, result.stdout.str()
        after = _get(f"{url}/verdict/canary-1?release=r1")
        other = _get(f"{url}/verdict/canary-2?release=r1")
    assert before["verdict"] == "none"
    assert "no run of stage 'canary-1'" in before["message"]
    assert after["verdict"] == "pass", after
    assert after["outcome"] == "passed"
    assert after["judged"] == {"canary": {"verdict": "pass", "problem": None}}
    assert other["verdict"] == "none"


def test_insufficient_evidence_is_insufficient_although_the_stage_rolled_back(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = new_port()
    project(pytester, canary_toml(router_port=port, sampler={"rate": 0, "direct_rate": 3}))
    bootstrap_main(canary_root, port)
    result = run_stage(pytester, "canary-1", "--image=v2")
    assert result.ret == 1, result.stdout.str()
    assert ledger_runs(canary_root)[0]["outcome"] == "rolled-back"
    with analysis_server(canary_root) as url:
        answer = _get(f"{url}/verdict/canary-1?release=r1")
    # Neither 'pass' (successCondition) nor 'fail' (failureCondition): Inconclusive.
    assert answer["verdict"] == "insufficient", answer
    assert answer["judged"]["canary"]["problem"] == "insufficient evidence"


def test_a_failing_look_is_fail(pytester: pytest.Pytester, canary_root: Path) -> None:
    port = new_port()
    # A fault the judge sees whatever the machine's load (as the canary stage's health
    # test): /health answers 503 after 3 s, more than 3 consecutive failed probes.
    toml = canary_toml(router_port=port, hold="8s", sampler={"health_interval": "0.25s"})
    project(pytester, toml)
    bootstrap_main(canary_root, port)
    with load_through(port):
        result = run_stage(pytester, "canary-1", "--image=v2-sickens")
    assert result.ret == 1, result.stdout.str()
    with analysis_server(canary_root) as url:
        answer = _get(f"{url}/verdict/canary-1?release=r1")
        with pytest.raises(urllib.error.HTTPError) as missing:
            _get(f"{url}/verdict/canary-1")
    assert answer["verdict"] == "fail", answer
    assert answer["outcome"] == "rolled-back"
    assert answer["judged"]["canary"]["verdict"] == "fail"
    assert missing.value.code == 404
    assert "GET /verdict/<stage>?release=<id>" in missing.value.read().decode()


def _entry(outcome: str, judged: str | None) -> LedgerEntry:
    details = {"canary_verdicts": {"canary": {"verdict": judged}}} if judged else {}
    entry = LedgerEntry.start(
        release_id="r1", stage="canary-1", image="v2", report=None, override_requires=None
    )
    return LedgerEntry(**{**entry.to_json(), "outcome": outcome, "details": details})


@pytest.mark.parametrize(
    ("outcome", "judged", "expected"),
    [
        ("running", None, "running"),
        ("interrupted", "pass", "insufficient"),  # judging did not end: never a pass
        ("passed", "insufficient", "insufficient"),
        ("passed", None, "pass"),  # a stage without a hold (promote, hold 0)
        ("failed", None, "fail"),  # a gate failed, not the judge
        ("failed", "insufficient", "insufficient"),
        ("rollback-failed", "fail", "fail"),
    ],
)
def test_the_ledger_outcome_and_judged_verdict_make_one_answer(
    outcome: str, judged: str | None, expected: str
) -> None:
    assert controller_verdict(_entry(outcome, judged)) == expected

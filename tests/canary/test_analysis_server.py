"""``python -m pytest_release analysis-server``: the verdict of real canary stages (local
platform, real HAProxy and replica processes), read from the ledger they wrote, as the
JSON the Argo Rollouts ``web`` provider tests: ``pass`` only for a stage the judge passed,
``fail`` for a failing look, ``insufficient`` (meeting neither generated condition, so the
AnalysisRun is Inconclusive) for a stage without enough evidence, even though it was
rolled back."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from pytest_release.controllers.verdict import controller_verdict
from pytest_release.ledger.ledger import LedgerEntry
from tests.analysis_support import analysis_server, get_json
from tests.canary.canary_support import (
    bootstrap_main,
    canary_root,
    canary_toml,
    load_through,
    new_port,
)
from tests.support.spine import ledger_runs, project, run_stage

__all__ = ["canary_root"]


def test_a_passed_stage_is_pass_and_an_unrecorded_one_is_none(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = new_port()
    project(pytester, canary_toml(router_port=port))
    bootstrap_main(canary_root, port)
    with analysis_server(canary_root) as url:
        before = get_json(f"{url}/verdict/canary-1?release=r1")
        result = run_stage(pytester, "canary-1", "--image=v2")
        assert result.ret == 0, result.stdout.str()
        after = get_json(f"{url}/verdict/canary-1?release=r1")
        other = get_json(f"{url}/verdict/canary-2?release=r1")
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
        answer = get_json(f"{url}/verdict/canary-1?release=r1")
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
        answer = get_json(f"{url}/verdict/canary-1?release=r1")
        with pytest.raises(urllib.error.HTTPError) as missing:
            get_json(f"{url}/verdict/canary-1")
        # Read while the server runs: the body may still be on its way when it ends.
        missing_body = missing.value.read().decode()
    assert answer["verdict"] == "fail", answer
    assert answer["outcome"] == "rolled-back"
    assert answer["judged"]["canary"]["verdict"] == "fail"
    assert missing.value.code == 404
    assert "GET /verdict/<stage>?release=<id>" in missing_body


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

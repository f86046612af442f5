"""judge.http_checks = false: a canary judged on pod status alone (no request reaches a pod)."""

from __future__ import annotations

from pytest_release.canary.judge import Judge, JudgeConfig
from pytest_release.canary.samples import ReplicaStatus


def _status(t: float, name: str, restarts: int, version: str = "canary") -> ReplicaStatus:
    return ReplicaStatus(
        timestamp=t,
        name=name,
        version=version,  # type: ignore[arg-type]
        image="shop:2.0",
        running=True,
        ready=True,
        restarts=restarts,
        endpoint="10.0.0.5:8080",
    )


def test_without_http_checks_restarts_decide_and_no_request_is_needed() -> None:
    judge = Judge(JudgeConfig(http_checks=False, max_restarts=0))
    good = judge.judge_interval([], [_status(0.5, "shop-canary-a", 0)], 0.0, 1.0)
    assert good.verdict == "pass"
    assert [c.name for c in good.checks] == ["restarts"]

    bad = judge.judge_interval([], [_status(1.5, "shop-canary-a", 2)], 1.0, 2.0)
    assert bad.verdict == "fail"
    assert "canary replicas restarted 2 times (shop-canary-a x2) > 0" in bad.failure_message()
    assert judge.judge_stage([good, bad]).verdict == "fail"


def test_without_http_checks_no_canary_status_is_insufficient_never_a_pass() -> None:
    judge = Judge(JudgeConfig(http_checks=False))
    verdict = judge.judge_interval([], [_status(0.5, "shop-a", 0, "stable")], 0.0, 1.0)
    assert verdict.verdict == "insufficient"


def test_with_http_checks_the_same_evidence_is_insufficient() -> None:
    verdict = Judge(JudgeConfig()).judge_interval([], [_status(0.5, "c", 0)], 0.0, 1.0)
    assert verdict.verdict != "pass"

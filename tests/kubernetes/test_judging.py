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


def test_restart_verdict_quotes_the_newest_evidence_of_each_canary_pod() -> None:
    from dataclasses import replace

    judge = Judge(JudgeConfig(http_checks=False, max_restarts=0))
    older = replace(_status(1.2, "shop-canary-a", 1), events=("waiting: ContainerCreating",))
    newest = replace(
        _status(1.6, "shop-canary-a", 2),
        events=(
            "waiting: CrashLoopBackOff: back-off 20s restarting failed container",
            "last terminated: OOMKilled (exit code 137)",
            "BackOff (x2): Back-off restarting failed container shop in pod shop-canary-a",
        ),
    )
    quiet = _status(1.4, "shop-canary-b", 0)
    verdict = judge.judge_interval([], [newest, quiet, older], 1.0, 2.0)
    message = verdict.failure_message()
    assert "canary replicas restarted 2 times (shop-canary-a x2) > 0" in message
    assert "\n  shop-canary-a: waiting: CrashLoopBackOff" in message
    assert "last terminated: OOMKilled (exit code 137); BackOff (x2): Back-off" in message
    assert "ContainerCreating" not in message
    assert "shop-canary-b:" not in message  # no evidence, no line

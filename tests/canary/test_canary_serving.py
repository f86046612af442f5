"""The hold's watch for a canary that stops serving (judge/canary_serving.py): which
platform report counts as "no ready canary replica", and the failed check it becomes.
The behaviour through Traefik on a real node is tests/kubernetes_node/test_unready_canary.py."""

from __future__ import annotations

from dataclasses import replace

from pytest_release.canary.judge.canary_serving import canary_serving_result, unserved_canary
from tests.canary.judge_support import status


def test_the_newest_report_with_no_ready_canary_replica_is_found() -> None:
    ready = status(1.0)
    unready = replace(status(2.0), ready=False, events=("Unhealthy: Readiness probe failed",))
    crashed = replace(status(2.0, name="canary-1"), running=False, ready=False, restarts=2)
    found = unserved_canary([ready, status(2.0, version="stable", name="s"), unready, crashed])
    assert found is not None
    assert found.at == 2.0
    assert [r.name for r in found.replicas] == ["canary-0", "canary-1"]
    described = found.describe()
    assert "canary-0 (running, not ready, 0 restart(s)): Unhealthy" in described
    assert "canary-1 (not running, not ready, 2 restart(s))" in described


def test_one_ready_canary_replica_or_an_older_unready_report_is_not_found() -> None:
    unready = replace(status(1.0), ready=False)
    # The newest report decides: the canary was unready, is ready again.
    assert unserved_canary([unready, status(2.0)]) is None
    # One of two replicas ready: the canary still serves.
    assert unserved_canary([replace(status(3.0), ready=False), status(3.0, name="c1")]) is None
    # No canary replica in the report (one being replaced), no report: nothing to act on.
    assert unserved_canary([status(4.0, version="stable", name="s")]) is None
    assert unserved_canary([]) is None


def test_the_check_fails_and_says_what_the_router_did() -> None:
    found = unserved_canary([replace(status(5.0), ready=False)])
    assert found is not None
    result = canary_serving_result(found, "the router reads back stable 100% / canary 0%", (0, 5))
    assert result.verdict == "fail"
    assert result.source == "platform"
    assert "no canary replica was running and ready" in result.message
    assert "stable 100% / canary 0%" in result.message
    assert dict(result.details)["router"] == "the router reads back stable 100% / canary 0%"

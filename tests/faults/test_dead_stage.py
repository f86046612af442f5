"""Nothing unjudged stays live (issue 29): a rollback aims at the release it names, an
interrupted pipeline lets its stage roll back, a stage that dies is found and undone.

Real HAProxy, real replica processes, real pytest stages (tests/canary's local platform).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.canary.canary_support import (
    bootstrap_main,
    canary_root,
    canary_toml,
    load_through,
    new_port,
    platform_config,
)
from tests.spine_support import ledger_runs, project, run_stage, stage_cases

__all__ = ["canary_root"]

# These tests are about what a stage leaves behind, not about judging: thresholds only
# (a loaded machine can make one canary replica credibly slower than three stable ones).
THRESHOLDS_ONLY = {"comparison": {"enabled": False}}


def _main_and_canary(root: Path) -> tuple[str | None, int, int, int]:
    """(main's image, main replicas, canary replicas, canary's router weight)."""
    from pytest_release.canary.platforms.local.platform import LocalPlatform
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.canary.routers.haproxy.router import HAProxyRouter

    platform = LocalPlatform(platform_config(), root)
    status = platform.status()
    weights = HAProxyRouter(HAProxyConfig(), platform.state_dir).weights()
    return (
        status.stable_image,
        len(status.group("stable")),
        len(status.group("canary")),
        weights.canary,
    )


def test_rollback_of_a_release_that_never_promoted_removes_only_its_canary(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = new_port()
    project(pytester, canary_toml(router_port=port, judge=THRESHOLDS_ONLY))
    bootstrap_main(canary_root, port)
    # Release r1 (v2) is promoted: main runs v2, v1 before it.
    promoted = run_stage(pytester, "canary-3", "--image=v2", "--override-requires=test setup")
    assert promoted.ret == 0, promoted.stdout.str()
    # Release r2 (v3) is on canary-1 and leaves its canary live for canary-2.
    canary = run_stage(pytester, "canary-1", "--image=v3", release="r2")
    assert canary.ret == 0, canary.stdout.str()
    assert _main_and_canary(canary_root) == ("v2", 3, 1, 10)

    with load_through(port) as load:
        rollback = run_stage(pytester, "rollback", release="r2")
    assert rollback.ret == 0, rollback.stdout.str()
    # r2 never changed the main deployment: v2 (which passed every stage) stays.
    assert _main_and_canary(canary_root) == ("v2", 3, 0, 0)
    assert load.failures == []
    cases = stage_cases(canary_root, "rollback")
    assert cases["rollback:main"][0] == "passed"
    assert cases["rollback:main"][2]["main.image"] == "v2"
    assert "never changed the main deployment" in cases["rollback:main"][2]["rollback.target"]
    entry = ledger_runs(canary_root)[-1]
    assert (entry["stage"], entry["release_id"], entry["outcome"]) == ("rollback", "r2", "passed")
    assert "only its canary is removed" in entry["details"]["rollback"]
    assert "main deployment on v2" in entry["details"]["rollback"]
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r2")
    assert "[rollback: release r2 never changed the main deployment" in status.stdout.str()

    # The rollback of r1, which promoted, returns main to the version before it.
    back = run_stage(pytester, "rollback", release="r1")
    assert back.ret == 0, back.stdout.str()
    assert _main_and_canary(canary_root) == ("v1", 3, 0, 0)
    assert "changed the main deployment" in ledger_runs(canary_root)[-1]["details"]["rollback"]


def test_rollback_of_a_release_with_nothing_recorded_refuses_unless_the_target_is_named(
    pytester: pytest.Pytester, canary_root: Path
) -> None:
    port = new_port()
    project(pytester, canary_toml(router_port=port, judge=THRESHOLDS_ONLY))
    bootstrap_main(canary_root, port)
    promoted = run_stage(pytester, "canary-3", "--image=v2", "--override-requires=test setup")
    assert promoted.ret == 0, promoted.stdout.str()

    refused = run_stage(pytester, "rollback", release="nobody")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR, refused.stdout.str()
    err = refused.stderr.str()
    assert "records no rollout of release nobody" in err
    assert "--release-image=REF" in err
    assert "--to=REF" in err
    assert "INTERNALERROR" not in err + refused.stdout.str()
    assert _main_and_canary(canary_root) == ("v2", 3, 0, 0)
    assert [r["stage"] for r in ledger_runs(canary_root)] == ["canary-3"]

    # An image that is not what the release rolled out is a usage error too.
    wrong = run_stage(pytester, "rollback", "--image=v9")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR, wrong.stdout.str()
    assert "--release-image=v9 is not what release r1 rolled out (v2" in wrong.stderr.str()

    # --to names the main deployment's image: that is what it runs afterwards.
    named = run_stage(pytester, "rollback", "--to=v1", release="nobody")
    assert named.ret == 0, named.stdout.str()
    assert _main_and_canary(canary_root) == ("v1", 3, 0, 0)
    assert "main deployment to v1 (--to)" in ledger_runs(canary_root)[-1]["details"]["rollback"]

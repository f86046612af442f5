"""The observing platform's configuration (``platform.type = "argo-rollouts"``) refused
before a stage starts, each with what is wrong and how to fix it (exit 4, no ledger
entry). The stages with the real controller are in tests/kubernetes/test_argo_observing.py."""

from __future__ import annotations

import pytest

from tests.faults.test_bad_input import assert_no_ledger
from tests.support.spine import assert_usage_error, project, run_stage

PLATFORM = """
[gates.canary.platform]
type = "argo-rollouts"
namespace = "shop"
rollout = "shop"
"""
TRAEFIK = """
[gates.canary.router]
type = "traefik"
[gates.canary.judge]
http_checks = false
max_restarts = 0
"""


@pytest.mark.parametrize(
    ("toml", "stage", "expected"),
    [
        pytest.param(
            PLATFORM + "[gates.canary.judge]\nhttp_checks = false\nmax_restarts = 0\n",
            "canary-1",
            "*platform.type = 'argo-rollouts' cannot be routed by router.type = 'haproxy'*"
            "router.type = 'traefik' (the TraefikService the Rollout's trafficRouting names*",
            id="router-not-traefik",
        ),
        pytest.param(
            PLATFORM + '[gates.canary.router]\ntype = "traefik"\n',
            "canary-1",
            "*judge.http_checks = true on Kubernetes needs platform.sample_pods = true*",
            id="http-checks-without-pod-access",
        ),
        pytest.param(
            PLATFORM + TRAEFIK,
            "rollback",
            "*stages.rollback.rollout.action = 'rollback': platform.type = 'argo-rollouts' "
            "observes a controller*(action 'canary' or 'promote'); roll back with the "
            "controller (kubectl argo rollouts abort)*",
            id="rollback-is-the-controllers",
        ),
        pytest.param(
            PLATFORM.replace('rollout = "shop"', 'rollout = "Shop_1"') + TRAEFIK,
            "canary-1",
            "*rollout 'Shop_1' is not a valid Kubernetes object name*",
            id="bad-rollout-name",
        ),
    ],
)
def test_observing_platform_configuration_is_refused_with_the_fix(
    pytester: pytest.Pytester, toml: str, stage: str, expected: str
) -> None:
    project(pytester, "[stages.canary-1]\nrequires = []\n" + toml)
    assert_usage_error(run_stage(pytester, stage, "--collect-only"), expected)
    assert_no_ledger(pytester)


def test_observing_stage_runs_without_a_release_image(pytester: pytest.Pytester) -> None:
    """The controller deploys the release: the stage runs for the canary's pod-template
    hash (``--release-id``) and needs no ``--image``; its steps are the observing ones."""
    project(pytester, "[stages.canary-1]\nrequires = []\n" + PLATFORM + TRAEFIK)
    result = run_stage(pytester, "canary-1", "--collect-only", "-q", release="6d4f8b9c7")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    collected = [line for line in result.stdout.lines if "::" in line]
    names = [line.rsplit("::", 1)[1] for line in collected]
    assert names[0] == "observe", collected
    assert names[-1] == "verdict", collected
    assert not {"deploy", "traffic", "rollback:traffic", "rollback:canary"} & set(names)

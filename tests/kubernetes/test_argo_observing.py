"""The observing platform (``platform.type = "argo-rollouts"``) with the real Argo Rollouts
controller on the kwok API server: the controller drives the Rollout that
``python -m pytest_release argo-rollouts`` generated (``web`` provider), the stages
``canary-1`` (10 %), ``canary-2`` (50 %) and ``canary-3`` (100 %) run as real pytest
sessions that observe it, judge, and record their verdict in the ledger the analysis
server reads:

* healthy canary pods: each stage passes, the controller goes on, and promotes;
* a canary pod that restarted: canary-1 fails (judge: restarts), the AnalysisRun fails,
  the controller aborts and sends the traffic back to stable; the stage rolled nothing
  back itself, and ``argo-status`` records the controller's abort in its ledger entry;
* a stage run at the wrong step fails, naming the weight it expects and the one the
  controller set; ``requires`` holds across the Rollout's steps (canary-2 before canary-1
  of the same pod-template hash is refused).

kwok runs no containers, so the judge decides on pod status (restarts, readiness:
``judge.http_checks = false``); restarts are set through the pod status subresource, as a
crashing container shows them. Request evidence (sampler, Traefik through Prometheus) runs
on the real node (tests/kubernetes_node).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_release.canary.config import SamplerConfig
from pytest_release.canary.judge import JudgeConfig
from pytest_release.canary.platforms.argo_rollouts.config import ArgoRolloutsPlatformConfig
from pytest_release.canary.platforms.argo_rollouts.observe import ObservedRollout, RolloutObserver
from pytest_release.canary.platforms.argo_rollouts.rollout import build_rollout
from pytest_release.canary.platforms.kubernetes.client import PODS, KubeApi
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
from pytest_release.canary.settings import CanarySettings
from pytest_release.errors import ReleaseError
from tests.analysis_support import analysis_server
from tests.kubernetes.argo_crds import argo_cluster
from tests.kubernetes.argo_support import (
    aborted,
    argo_stages,
    argo_status,
    controller_release,
    generate_rollout,
    ledger_entry,
)
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.k8s_support import set_restarts
from tests.kubernetes.test_argo_controller import CONFIG as GENERATOR_CONFIG
from tests.kubernetes.test_argo_controller import _workload
from tests.support.junit import cases_by_name, stage_report
from tests.support.spine import project, run_stage

__all__ = ["argo_cluster"]

# Seconds after the hold until which the web metric asks (every 5 s; the first pass or
# fail decides). The stage must have recorded by then, also on a loaded machine: canary-1
# recorded 10 s after its step started with the machine's load at 8 on 2 cores (behind the
# refused early canary-2 run: two pytest sessions), and more than 31 s at a load of 14,
# where 30 s here left the analysis Inconclusive and the Rollout paused; canary-2 and
# canary-3 are already waiting in observe when their step starts.
VERDICT_DELAY = 60
OBSERVING = """
[gates.canary.platform]
type = "argo-rollouts"
namespace = "{namespace}"
rollout = "shop"
kubeconfig = "{kubeconfig}"
observe_timeout = "90s"
[gates.canary.router]
type = "traefik"
[gates.canary.judge]
http_checks = false
max_restarts = 0
[gates.canary.sampler]
status_interval = "0.25s"
"""


def _observing_project(pytester: pytest.Pytester, cluster: KwokCluster, namespace: str) -> Path:
    """The observing stages' project (holds of a second: the judge reads pod status)."""
    gate = OBSERVING.format(namespace=namespace, kubeconfig=cluster.kubeconfig)
    return project(pytester, argo_stages("1s", "1s", "1s") + gate)


@contextmanager
def controlled_release(
    cluster: KwokCluster, namespace: str, root: Path
) -> Iterator[tuple[KubeApi, RolloutObserver, ObservedRollout, str]]:
    """The service, the generated Rollout (web provider, the analysis server of ``root``)
    and the controller; the release started (the Deployment's image changed). Yields the
    API, the observer, the reading before the release, and the canary's hash."""
    workload = root / "workload.yaml"
    workload.write_text("\n".join(json.dumps(d) + "\n---" for d in _workload(namespace)))
    cluster.kubectl("apply", "-f", str(workload))
    generator = root / "generator"
    generator.mkdir()
    # The generator reads the service from a kubernetes/traefik table (its own project).
    (generator / "pyproject.toml").write_text(GENERATOR_CONFIG.format(namespace=namespace))
    with analysis_server(root) as url:
        argo = generate_rollout(generator, url, VERDICT_DELAY)
        cluster.kubectl("apply", "--server-side", "-f", str(argo))
        api = cluster.api()
        try:
            with controller_release(
                api, namespace, cluster.kubeconfig, root / "rollouts-controller.log",
                ("shop", "shop:2"),
                lambda o: (
                    o.canary_hash is not None
                    and o.router_weights is not None
                    and o.router_weights.canary == 10
                ),
            ) as (observer, first, canary):  # fmt: skip
                yield api, observer, first, canary
        finally:
            api.close()


def _assert_read_only(namespace: str, kubeconfig: Path) -> None:
    """Every write of the observing platform, router and rollout is refused, naming the
    controller, and changes nothing; the platform reads the stable pods by their hash."""
    platform = ArgoRolloutsPlatformConfig(
        type="argo-rollouts", namespace=namespace, rollout="shop", kubeconfig=str(kubeconfig)
    )
    settings = CanarySettings(
        gate="canary",
        platform=platform,
        router=TraefikRouterConfig(type="traefik"),
        sampler=SamplerConfig(),
        judge=JudgeConfig(),
        slack=None,
        rollback_on_insufficient=True,
        verify_requests=1,
    )
    rollout = build_rollout(settings, None)
    before = rollout.router.weights()
    status = rollout.platform.status()
    writes: list[Callable[[], object]] = [
        lambda: rollout.deploy_canary("shop:3", 1),
        lambda: rollout.shift(50),
        lambda: rollout.rollback_traffic(),
        lambda: rollout.rollback(None),
        lambda: rollout.promote("shop:3", 1),
        lambda: rollout.platform.deploy_canary("shop:3", 1),
        lambda: rollout.platform.promote(),
        lambda: rollout.platform.rollback(),
        lambda: rollout.router.set_weights(stable=50, canary=50),
        lambda: rollout.router.set_members(stable=["shop"], canary=[]),
    ]
    for write in writes:
        with pytest.raises(ReleaseError, match="Argo Rollouts controller"):
            write()
    # (The controller may still scale the aborted canary down: only the weights are fixed.)
    assert rollout.router.weights() == before
    assert status.group("stable"), status.describe()


def _props(case: Any) -> dict[str, str]:
    return dict(case.property_pairs)


@pytest.mark.heavy(36)
def test_healthy_canary_is_judged_at_each_step_and_promoted_by_the_controller(
    pytester: pytest.Pytester, argo_cluster: KwokCluster, namespace: str
) -> None:
    root = _observing_project(pytester, argo_cluster, namespace)
    with controlled_release(argo_cluster, namespace, root) as (_, observer, first, rel):
        # requires across the Rollout's steps: canary-1 of this hash has not passed yet.
        early = run_stage(pytester, "canary-2", release=rel)
        assert early.ret == 4, early.stdout.str()
        early.stderr.fnmatch_lines(["*canary-1*"])

        steps = (("canary-1", 10, ()), ("canary-2", 50, ("-n", "2")), ("canary-3", 100, ()))
        for stage, weight, xdist in steps:  # canary-2 under xdist: steps on a worker
            result = run_stage(pytester, stage, *xdist, release=rel)
            assert result.ret == 0, result.stdout.str()
            cases = cases_by_name(stage_report(root, stage))
            observed = _props(cases["observe"])
            assert observed["canary.hash"] == rel
            assert observed["router.canary_percent"] == str(weight)
            assert observed["stable.hash"] == first.stable_hash
            # The controller owns the rollout: no step of the stage deploys or rolls back.
            assert not {"deploy", "traffic", "rollback:traffic", "promote:main"} & set(cases)
            entry = ledger_entry(root, rel, stage)
            assert entry.outcome == "passed"
            assert entry.details["controller"]["canary"] == rel
            if stage != "canary-3":  # promote: no hold, nothing judged
                assert cases["verdict"].outcome == "passed"
                assert entry.details["canary_verdicts"]["canary"]["verdict"] == "pass"

        promoted = observer.wait_for(
            "the controller to promote the release",
            lambda o: o.action == "promoted" and o.stable_hash == rel,
            timeout=180,
        )
    assert promoted.router_weights is not None
    assert promoted.router_weights.canary == 0


@pytest.mark.heavy(30)
def test_failing_canary_fails_the_analysis_and_the_controller_aborts(
    pytester: pytest.Pytester, argo_cluster: KwokCluster, namespace: str
) -> None:
    root = _observing_project(pytester, argo_cluster, namespace)
    # A shorter wait for the wrong-step stage (a layered configuration file).
    (root / "short-wait.toml").write_text(
        textwrap.dedent("""\
            [tool.pytest-release.gates.canary.platform]
            observe_timeout = "3s"
        """)
    )
    with controlled_release(argo_cluster, namespace, root) as (api, observer, first, rel):
        wrong = run_stage(
            pytester, "canary-2", "--override-requires=wrong step test",
            "--release-config=pyproject.toml", "--release-config=short-wait.toml", release=rel,
        )  # fmt: skip
        assert wrong.ret == 1, wrong.stdout.str()
        message = cases_by_name(stage_report(root, "canary-2"))["observe"].details
        assert "expects canary 50%" in message, message
        assert "canary 10%" in message, message

        canary_pods = api.list(PODS, namespace, f"rollouts-pod-template-hash={rel}")
        assert canary_pods, "no canary pod"
        set_restarts(api, namespace, canary_pods[0], 1)
        result = run_stage(pytester, "canary-1", release=rel)
        assert result.ret == 1, result.stdout.str()
        cases = cases_by_name(stage_report(root, "canary-1"))
        assert cases["observe"].outcome == "passed"
        failed = [c for name, c in cases.items() if name.startswith("health@")]
        assert failed[0].outcome == "failure", failed
        assert "restart" in failed[0].details
        assert not [name for name in cases if name.startswith("rollback")]
        entry = ledger_entry(root, rel, "canary-1")
        # Failed, not rolled back: pytest-release rolled nothing back, the controller will.
        assert entry.outcome == "failed", entry
        assert entry.details["canary_verdicts"]["canary"]["verdict"] == "fail"
        assert entry.details["controller"]["action"] != "aborted"

        # Rollback is the controller's: it aborts, then sends all traffic back to stable.
        stopped = aborted(observer, timeout=180)
        assert stopped.stable_hash == first.stable_hash
        assert stopped.router_weights is not None
        assert stopped.router_weights.canary == 0
        _assert_read_only(namespace, argo_cluster.kubeconfig)
        argo_status(root, namespace, argo_cluster.kubeconfig, "canary-1", rel)
    controller = ledger_entry(root, rel, "canary-1").details["controller"]
    assert controller["action"] == "aborted", controller

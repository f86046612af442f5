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
import subprocess
import sys
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
from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS, PODS, KubeApi
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
from pytest_release.canary.settings import CanarySettings
from pytest_release.errors import ReleaseError
from pytest_release.ledger.ledger import Ledger, LedgerEntry
from tests.analysis_support import analysis_server
from tests.kubernetes.argo_crds import argo_cluster, rollouts_controller
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.k8s_support import set_restarts
from tests.kubernetes.test_argo_controller import CONFIG as GENERATOR_CONFIG
from tests.kubernetes.test_argo_controller import _workload
from tests.support.junit import cases_by_name, stage_report
from tests.support.spine import project, run_stage

__all__ = ["argo_cluster"]

VERDICT_DELAY = 60  # seconds after the hold the web metric asks: the stage has recorded,
# also on a loaded machine (the next stage starts and waits in observe meanwhile)
OBSERVING = """
[stages.canary-1]
gates = ["canary"]
requires = []
rollout = {{ action = "canary", replicas = 1, weight = 10, hold = "1s", interval = "1s" }}
[stages.canary-2]
gates = ["canary"]
requires = ["canary-1"]
rollout = {{ action = "canary", replicas = 1, weight = 50, hold = "1s", interval = "1s" }}
[stages.canary-3]
gates = ["canary"]
requires = ["canary-2"]
rollout = {{ action = "promote", replicas = 1, weight = 100, hold = "0s" }}
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


@contextmanager
def controlled_release(
    cluster: KwokCluster, namespace: str, root: Path, log: Path
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
        generated = subprocess.run(
            [sys.executable, "-m", "pytest_release", "argo-rollouts", "--provider=web",
             f"--analysis-url={url}", f"--verdict-delay={VERDICT_DELAY}", "-o", "argo.yaml"],
            cwd=generator, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stderr
        cluster.kubectl("apply", "--server-side", "-f", str(generator / "argo.yaml"))
        api = cluster.api()
        observer = RolloutObserver(api, namespace, "shop")
        try:
            with rollouts_controller(cluster.kubeconfig, namespace, log):
                first = observer.wait_for(
                    "the first revision to become stable",
                    lambda o: o.phase == "Healthy" and o.stable_hash is not None,
                    timeout=120,
                )
                api.merge_patch(DEPLOYMENTS, namespace, "shop", {"spec": {"template": {
                    "spec": {"containers": [{"name": "shop", "image": "shop:2"}]}}}})  # fmt: skip
                canary = observer.wait_for(
                    "the controller to start the canary at 10 %",
                    lambda o: (
                        o.canary_hash is not None
                        and o.router_weights is not None
                        and o.router_weights.canary == 10
                    ),
                    timeout=120,
                )
                assert canary.canary_hash is not None
                yield api, observer, first, canary.canary_hash
        except BaseException:
            print(log.read_text(errors="replace")[-6000:])
            raise
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


def _entry(root: Path, release: str, stage: str) -> LedgerEntry:
    entry = Ledger(root / ".pytest-release" / "ledger.json").latest(release, stage)
    assert entry is not None, f"no ledger entry of {stage} for {release}"
    return entry


def _props(case: Any) -> dict[str, str]:
    return dict(case.property_pairs)


def test_healthy_canary_is_judged_at_each_step_and_promoted_by_the_controller(
    pytester: pytest.Pytester, argo_cluster: KwokCluster, namespace: str
) -> None:
    root = project(
        pytester,
        OBSERVING.format(namespace=namespace, kubeconfig=argo_cluster.kubeconfig),
    )
    log = root / "rollouts-controller.log"
    with controlled_release(argo_cluster, namespace, root, log) as (_, observer, first, rel):
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
            entry = _entry(root, rel, stage)
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


def test_failing_canary_fails_the_analysis_and_the_controller_aborts(
    pytester: pytest.Pytester, argo_cluster: KwokCluster, namespace: str
) -> None:
    root = project(
        pytester,
        OBSERVING.format(namespace=namespace, kubeconfig=argo_cluster.kubeconfig),
    )
    # A shorter wait for the wrong-step stage (a layered configuration file).
    (root / "short-wait.toml").write_text(
        textwrap.dedent("""\
            [tool.pytest-release.gates.canary.platform]
            observe_timeout = "3s"
        """)
    )
    log = root / "rollouts-controller.log"
    with controlled_release(argo_cluster, namespace, root, log) as (api, observer, first, rel):
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
        entry = _entry(root, rel, "canary-1")
        # Failed, not rolled back: pytest-release rolled nothing back, the controller will.
        assert entry.outcome == "failed", entry
        assert entry.details["canary_verdicts"]["canary"]["verdict"] == "fail"
        assert entry.details["controller"]["action"] != "aborted"

        # Rollback is the controller's: it aborts, then sends all traffic back to stable.
        aborted = observer.wait_for(
            "the controller to abort and send all traffic to stable",
            lambda o: (
                o.action == "aborted"
                and o.router_weights is not None
                and o.router_weights.canary == 0
            ),
            timeout=180,
        )
        assert aborted.stable_hash == first.stable_hash
        assert aborted.router_weights is not None
        assert aborted.router_weights.canary == 0
        _assert_read_only(namespace, argo_cluster.kubeconfig)
        recorded = subprocess.run(
            [sys.executable, "-m", "pytest_release", "argo-status", f"--namespace={namespace}",
             "--rollout=shop", f"--kubeconfig={argo_cluster.kubeconfig}", "--stage=canary-1",
             f"--release-id={rel}"],
            cwd=root, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert recorded.returncode == 0, recorded.stderr
    controller = _entry(root, rel, "canary-1").details["controller"]
    assert controller["action"] == "aborted", controller

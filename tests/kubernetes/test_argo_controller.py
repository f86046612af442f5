"""The real Argo Rollouts controller (built from the Go module proxy) on the kwok API
server drives the Rollout that ``python -m pytest_release argo-rollouts`` generated, asks
the analysis server for each stage's verdict (``web`` provider), and the observing
platform reads what it did (Rollout status and the TraefikService it manages):

* every stage recorded ``pass``: the controller goes 10 % -> 50 % -> 100 % and promotes;
* canary-1 recorded ``fail``: the AnalysisRun fails, the controller aborts, the traffic
  returns to stable;
* canary-1 recorded ``insufficient``: the AnalysisRun is Inconclusive and the controller
  pauses with the canary at 10 %: never a silent pass;

and ``python -m pytest_release argo-status --stage=canary-1`` records what the controller
did in canary-1's ledger entry.

kwok runs no containers, so no stage can gather evidence here: the stage records are
written by the test with the ledger API (a stand-in for the observing stages, whose
verdicts tests/canary/test_analysis_server.py takes from real stages). The controller,
the API server, the generated resources, the analysis server and the observer are real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_release.canary.platforms.argo_rollouts.observe import ObservedRollout
from pytest_release.canary.platforms.kubernetes.client import Kind
from pytest_release.ledger.ledger import Ledger, LedgerEntry
from tests.analysis_support import analysis_server
from tests.kubernetes.argo_crds import argo_cluster
from tests.kubernetes.argo_support import controller_release, generate_rollout
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.generated_support import (
    PLATFORM_TOML,
    apply_json,
    pytest_release,
    shop_deployment,
    write_project,
)

__all__ = ["argo_cluster"]

ANALYSIS_RUNS = Kind("argoproj.io", "v1alpha1", "analysisruns", "AnalysisRun")
STAGES = ("canary-1", "canary-2", "canary-3")
STAGES_TOML = """\
[tool.pytest-release.stages.canary-1]
gates = ["canary"]
requires = []
rollout = {{ action = "canary", replicas = 1, weight = 10, hold = "1s", interval = "1s" }}
[tool.pytest-release.stages.canary-2]
gates = ["canary"]
requires = ["canary-1"]
rollout = {{ action = "canary", replicas = 1, weight = 50, hold = "1s", interval = "1s" }}
[tool.pytest-release.stages.canary-3]
gates = ["canary"]
requires = ["canary-2"]
rollout = {{ action = "promote", replicas = 1, weight = 100, hold = "0s" }}
"""
# The generator's project (test_argo_observing generates with it too).
CONFIG = STAGES_TOML + PLATFORM_TOML


def _service(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }  # fmt: skip


def _workload(namespace: str) -> list[dict[str, Any]]:
    """The service before the release: the Deployment, its Services, the TraefikService."""
    traefik_service = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"weighted": {"services": [
            {"name": "shop", "port": 80, "weight": 100},
            {"name": "shop-canary", "port": 80, "weight": 0},
        ]}},
    }  # fmt: skip
    return [
        shop_deployment(namespace),
        _service("shop", namespace),
        _service("shop-canary", namespace),
        traefik_service,
    ]


def _record(root: Path, release: str, stage: str, outcome: str, judged: str) -> None:
    """The stand-in for the observing stage: its ledger record for the release (the
    canary's pod-template hash, as the generated analysis asks)."""
    entry = LedgerEntry.start(
        release_id=release, stage=stage, image="shop:2", report=None, override_requires=None
    )
    finished = LedgerEntry(
        **{
            **entry.to_json(),
            "outcome": outcome,
            "details": {"canary_verdicts": {"canary": {"verdict": judged, "problem": None}}},
        }
    )
    Ledger(root / ".pytest-release" / "ledger.json").append(finished)


def _analysis_runs(cluster: KwokCluster, namespace: str) -> dict[str, tuple[str, int]]:
    """The stage each AnalysisRun asked for -> (its phase, how many times its metric asked)."""
    api = cluster.api()
    try:
        runs = api.list(ANALYSIS_RUNS, namespace)
    finally:
        api.close()
    found = {}
    for run in runs:
        # The stage is the one whose verdict the run's web metric asks for.
        url = run["spec"]["metrics"][0]["provider"]["web"]["url"]
        status = run.get("status", {})
        asked = sum(int(m.get("count", 0)) for m in status.get("metricResults", []))
        found[url.split("/verdict/")[1].split("?")[0]] = (str(status.get("phase")), asked)
    return found


# The canary's traffic (%) once the controller has acted: none after a promotion or an
# abort, canary-1's weight while it waits for a human.
EXPECTED_CANARY_WEIGHT = {"promoted": 0, "aborted": 0, "paused": 10}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param({s: ("passed", "pass") for s in STAGES}, "promoted", id="pass-promoted"),
        pytest.param({"canary-1": ("rolled-back", "fail")}, "aborted", id="fail-aborted"),
        pytest.param(
            {"canary-1": ("rolled-back", "insufficient")}, "paused", id="insufficient-paused"
        ),
    ],
)
def test_the_controller_acts_on_the_served_verdict(
    argo_cluster: KwokCluster,
    namespace: str,
    tmp_path: Path,
    records: dict[str, tuple[str, str]],
    expected: str,
) -> None:
    write_project(tmp_path, CONFIG, namespace)
    apply_json(argo_cluster, tmp_path / "workload.yaml", _workload(namespace))
    with analysis_server(tmp_path) as url:
        argo = generate_rollout(tmp_path, url, verdict_delay=15)
        argo_cluster.kubectl("apply", "--server-side", "-f", str(argo))
        api = argo_cluster.api()
        log = tmp_path / "rollouts-controller.log"
        try:
            # The release: the Deployment's template (which the Rollout references).
            with controller_release(
                api, namespace, argo_cluster.kubeconfig, log, ("shop", "shop:2")
            ) as (observer, first, release):
                # Recorded well inside the first analysis' delay (hold + 15 s): before or
                # at its first asks.
                for stage, (outcome, judged) in records.items():
                    _record(tmp_path, release, stage, outcome, judged)
                # The action shows before its traffic does (an abort is in the status a
                # reconcile before the router's weights are back on stable): wait for both.
                seen = observer.wait_for(
                    f"the controller to reach '{expected}' with the canary's traffic at "
                    f"{EXPECTED_CANARY_WEIGHT[expected]} %",
                    lambda o: (
                        o.action == expected
                        and (expected != "promoted" or o.stable_hash != first.stable_hash)
                        and o.router_weights is not None
                        and o.router_weights.canary == EXPECTED_CANARY_WEIGHT[expected]
                    ),
                    timeout=240,
                )
                asked = _analysis_runs(argo_cluster, namespace)
        finally:
            api.close()
    _assert_end_state(seen, first, expected, asked)
    # What the controller did, read back from its status, in canary-1's ledger entry.
    pytest_release(
        tmp_path, "argo-status", f"--namespace={namespace}", "--rollout=shop",
        f"--kubeconfig={argo_cluster.kubeconfig}", "--stage=canary-1", f"--release-id={release}",
    )  # fmt: skip
    entry = Ledger(tmp_path / ".pytest-release" / "ledger.json").latest(release, "canary-1")
    assert entry is not None
    controller = entry.details["controller"]
    assert controller["action"] == expected, controller
    assert controller["rollout"] == f"{namespace}/shop"


def _assert_end_state(
    seen: ObservedRollout,
    first: ObservedRollout,
    expected: str,
    asked: dict[str, tuple[str, int]],
) -> None:
    # verdict_delay=15: the metric may ask 4 times (at the end of the hold, then every 5 s).
    # A recorded pass or fail ends it at the first ask that finds it (the verdicts are
    # recorded before the hold ends, or just after: 1 or 2 asks); insufficient asks all 4.
    decided = {stage: phase for stage, (phase, n) in asked.items() if n < 4}
    record = seen.to_record()
    assert record["action"] == expected
    if expected == "promoted":
        assert seen.stable_hash != first.stable_hash
        assert seen.canary_hash is None
        assert seen.router_weights is not None
        assert seen.router_weights.canary == 0
        assert decided == dict.fromkeys(STAGES, "Successful"), asked
    elif expected == "aborted":
        # Rollback is the controller's: all traffic back on the stable version.
        assert seen.stable_hash == first.stable_hash
        assert seen.router_weights is not None
        assert seen.router_weights.canary == 0
        assert decided == {"canary-1": "Failed"}, asked
    else:
        # Inconclusive: the Rollout waits at canary-1's weight for a human.
        assert seen.stable_hash == first.stable_hash
        assert seen.canary_hash is not None
        assert seen.router_weights is not None
        assert seen.router_weights.canary == 10
        assert asked == {"canary-1": ("Inconclusive", 4)}, asked

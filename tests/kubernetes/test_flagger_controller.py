"""The real Flagger controller (v1.36.1, built from the Go module proxy) on the kwok API
server drives the Canary that ``python -m pytest_release flagger`` generated, and
``python -m pytest_release webhook`` answers its webhooks by running the stage of each
step (``pytest --stage=<stage> --release-id=<checksum>``) and reading the ledger:

* the stages pass: Flagger goes 10 % -> 50 %, promotes, and ``post-rollout`` records
  ``promoted`` in the stages' ledger entries;
* the first stage fails: the ``rollback`` webhook answers 2xx, Flagger rolls back at once
  (long before ``threshold``), and ``post-rollout`` records ``rolled-back``.

kwok runs no containers, so the stages' tests cannot reach the canary: they are plain
tests that fail when the test plants ``BAD_RELEASE`` (a stand-in for a canary that breaks
them). Flagger, the API server, the generated Canary, the webhook, the stage runs and the
ledger are real.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS, Kind
from pytest_release.ledger.ledger import Ledger, LedgerEntry
from tests.analysis_support import analysis_server
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.flagger_support import flagger_cluster, flagger_controller
from tests.kubernetes.generated_support import (
    PLATFORM_TOML,
    apply_json,
    pytest_release,
    shop_deployment,
    write_project,
)

__all__ = ["flagger_cluster"]

CANARIES = Kind("flagger.app", "v1beta1", "canaries", "Canary")
CONFIG = (
    PLATFORM_TOML
    + """\
[tool.pytest-release.stages.step-10]
gates = ["unit"]
requires = []
rollout = {{ action = "canary", weight = 10, hold = "0s" }}
[tool.pytest-release.stages.step-50]
gates = ["unit"]
requires = ["step-10"]
rollout = {{ action = "canary", weight = 50, hold = "0s" }}
"""
)
RELEASE_TEST = """\
from pathlib import Path


def test_the_release_works():
    assert not (Path(__file__).parents[2] / "BAD_RELEASE").exists(), "the release is bad"
"""


def _canary_status(cluster: KwokCluster, namespace: str) -> dict[str, Any]:
    api = cluster.api()
    try:
        found = api.get(CANARIES, namespace, "shop") or {}
    finally:
        api.close()
    return dict(found.get("status") or {})


def _wait_for(
    cluster: KwokCluster, namespace: str, what: str, phases: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[Any] = []
    while True:
        status = _canary_status(cluster, namespace)
        step = (status.get("phase"), status.get("canaryWeight"), status.get("failedChecks"))
        if not seen or seen[-1] != step:
            seen.append(step)
        if status.get("phase") in phases:
            return {**status, "seen": seen}
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s; seen {seen}")
        time.sleep(0.5)


def _recorded_runs(root: Path, timeout: float) -> list[LedgerEntry]:
    """The runs of the mirrored stages, once each holds what Flagger did (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [
            e
            for e in Ledger(root / ".pytest-release" / "ledger.json").entries()
            if e.stage in ("step-10", "step-50")
        ]
        if (runs and all("controller" in e.details for e in runs)) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


@pytest.mark.heavy(103)
@pytest.mark.parametrize("bad", [False, True], ids=["good-promoted", "bad-rolled-back"])
def test_flagger_acts_on_the_webhook_answers(
    flagger_cluster: KwokCluster, namespace: str, tmp_path: Path, bad: bool
) -> None:
    write_project(tmp_path, CONFIG, namespace)
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_release.py").write_text(RELEASE_TEST)
    apply_json(flagger_cluster, tmp_path / "workload.yaml", [shop_deployment(namespace)])
    log = tmp_path / "flagger.log"
    webhook_args = ("--stages=step-10,step-50", f"--kubeconfig={flagger_cluster.kubeconfig}")
    with analysis_server(tmp_path, "webhook", *webhook_args) as url:
        # The built-in stages canary-1 (10 %) and canary-2 (50 %) carry the canary gate the
        # generator reads the target from; the webhook mirrors step-10 and step-50 (same
        # weights), which run only the unit gate.
        pytest_release(
            tmp_path, "flagger", f"--webhook-url={url}", "--stages=canary-1,canary-2",
            "--interval=10", "-o", "canary.yaml",
        )  # fmt: skip
        try:
            with flagger_controller(flagger_cluster.kubeconfig, namespace, log):
                flagger_cluster.kubectl("apply", "-f", str(tmp_path / "canary.yaml"))
                _wait_for(
                    flagger_cluster, namespace, "Flagger to initialise", ("Initialized",), 240
                )
                if bad:
                    (tmp_path / "BAD_RELEASE").write_text("")
                # The release: a new pod template of the target Deployment.
                api = flagger_cluster.api()
                try:
                    pod = {"spec": {"containers": [{"name": "shop", "image": "shop:2"}]}}
                    api.merge_patch(DEPLOYMENTS, namespace, "shop", {"spec": {"template": pod}})
                finally:
                    api.close()
                expected = "Failed" if bad else "Succeeded"
                end = _wait_for(
                    flagger_cluster, namespace, f"Flagger to reach {expected}",
                    ("Succeeded", "Failed"), 420,
                )  # fmt: skip
                # post-rollout comes just after the phase: its record in the ledger.
                runs = _recorded_runs(tmp_path, timeout=60)
        except Exception:
            print(log.read_text(errors="replace")[-8000:])
            raise
    assert end["phase"] == expected, (end, log.read_text(errors="replace")[-4000:])
    releases = {e.release_id for e in runs}
    assert len(releases) == 1, runs  # one checksum: the release under analysis
    if bad:
        assert [(e.stage, e.outcome) for e in runs] == [("step-10", "failed")]
        # Rolled back by the rollback webhook, long before the failed checks reach the
        # threshold.
        threshold = yaml.safe_load((tmp_path / "canary.yaml").read_text())["spec"]["analysis"][
            "threshold"
        ]
        assert max(c or 0 for _, _, c in end["seen"]) < threshold, end["seen"]
        assert "manual webhook invoked" in log.read_text()
    else:
        assert [(e.stage, e.outcome) for e in runs] == [
            ("step-10", "passed"), ("step-50", "passed"),
        ]  # fmt: skip
        weights = [w for _, w, _ in end["seen"] if w]
        assert {10, 50} <= set(weights), end["seen"]
    actions = {e.stage: (e.details.get("controller") or {}).get("action") for e in runs}
    assert set(actions.values()) == {"rolled-back" if bad else "promoted"}, actions

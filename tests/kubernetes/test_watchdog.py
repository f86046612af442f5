"""The Kubernetes dead man's switch (``python -m pytest_release k8s-watchdog``) against a
real API server: a canary stage SIGKILLed during its hold loses its traffic when its stage
Lease expires, without any pytest-release stage running; the rollout stays abandoned
until the rollback stage reconciles it.  The generated manifest is accepted by the API
server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.k8s_support import (
    image_and_replicas,
    ledger_runs,
    stage_toml,
    wait_for,
    weights_of,
)
from tests.kubernetes.test_stages import _stage_leases, _start_stage, weights_of_or_none
from tests.support.spine import project, run_stage


def _watchdog(namespace: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest_release", "k8s-watchdog", *args,
        f"--namespace={namespace}", "--app=shop",
    ]  # fmt: skip


def test_watchdog_switches_a_dead_stages_canary_to_stable_and_leaves_it_abandoned(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    project(
        pytester,
        stage_toml(namespace, kube_cluster.kubeconfig, hold="120s", interval="2s", lease_ttl="2s"),
    )
    api = kube_cluster.api()
    watchdog = subprocess.Popen(
        [
            *_watchdog(namespace, "run"),
            f"--kubeconfig={kube_cluster.kubeconfig}",
            "--interval=0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stage = _start_stage(pytester.path, "canary-1", "--image=shop:2.0")
    try:
        wait_for(
            "10% of the traffic on the canary",
            lambda: weights_of_or_none(api, namespace) == {"shop": 90, "shop-canary": 10},
            timeout=120,
        )
        wait_for("the stage's Lease", lambda: _stage_leases(api, namespace))
        # A live stage's renewed Lease is left alone (several polls of the watchdog).
        first = _stage_leases(api, namespace)[0]["spec"]["renewTime"]
        wait_for(
            "a renewal of the live stage's Lease",
            lambda: _stage_leases(api, namespace)[0]["spec"]["renewTime"] != first,
        )
        assert weights_of(api, namespace) == {"shop": 90, "shop-canary": 10}
        stage.kill()
        killed_at = time.time()
        stage.communicate(timeout=60)

        def switched() -> bool:
            weights = weights_of_or_none(api, namespace) or {}
            return weights.get("shop") == 100 and weights.get("shop-canary", 0) == 0

        wait_for("the watchdog's switch to 100% stable", switched, timeout=120)
        print(f"100% stable {time.time() - killed_at:.2f}s after SIGKILL (lease_ttl 2s)")
        canary = api.get(DEPLOYMENTS, namespace, "shop-canary")
        assert canary is not None
        assert canary["spec"]["replicas"] == 0
        lease = _stage_leases(api, namespace)[0]
        assert "pytest-release/switched" in lease["metadata"]["annotations"]
    finally:
        for process in (stage, watchdog):
            if process.poll() is None:
                process.kill()
        stage.communicate()
        output, _ = watchdog.communicate()
    assert "switched to 100% stable: the stage died: stage canary-1 of release r1" in output
    assert output.count("switched to 100% stable") == 1, output  # once per dead stage
    # The watchdog judged nothing: the rollout stays abandoned until the rollback.
    assert [(r["stage"], r["outcome"]) for r in ledger_runs(api, namespace)] == [
        ("canary-1", "running")
    ]
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1").stdout.str()
    assert "ABANDONED" in status
    reconcile = run_stage(pytester, "rollback")
    assert reconcile.ret == 0, reconcile.stdout.str()
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert weights_of(api, namespace) == {"shop": 100}
    assert _stage_leases(api, namespace) == []
    assert ledger_runs(api, namespace)[0]["outcome"] == "rolled-back"


def test_watchdog_manifest_is_accepted_by_the_api_server(
    kube_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [*_watchdog(namespace, "manifest"), "--image=shop:1.0"],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(result.stdout)
    kinds = [item["kind"] for item in document["items"]]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "Deployment"]
    manifest = tmp_path / "watchdog.json"
    manifest.write_text(result.stdout, encoding="utf-8")
    applied = kube_cluster.kubectl("apply", "-n", namespace, "-f", str(manifest))
    assert "deployment.apps/pytest-release-watchdog-shop created" in applied.stdout
    container = document["items"][3]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:5] == ["python", "-m", "pytest_release", "k8s-watchdog", "run"]

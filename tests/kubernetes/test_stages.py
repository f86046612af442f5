"""Canary stages (real pytest sessions) on the Kubernetes platform of a real API server.

kwok runs no container, so no request can reach a pod: the canary gate judges on pod
status (restarts, readiness) with ``judge.http_checks = false``; restarts are set through
the pod status subresource, as a crashing container would show them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_release.canary.platforms.kubernetes.client import LEASES
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.k8s_support import (
    assert_only_main,
    cluster_project,
    image_and_replicas,
    ledger_runs,
    pods,
    rollout_for,
    service_exists,
    stage_toml,
    wait_for,
    wait_for_first_step,
    weights_of,
)
from tests.support.spine import (
    assert_refused_while_abandoned,
    project,
    run_stage,
    stage_cases,
    stage_process,
    start_stage,
)


def test_good_canary_promoted_through_10_50_100_percent(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    api = cluster_project(pytester, kube_cluster, namespace)

    r1 = run_stage(pytester, "canary-1", "--image=shop:2.0")
    assert r1.ret == 0, r1.stdout.str()
    assert image_and_replicas(api, namespace, "shop") == ("shop:1.0", 2)
    assert image_and_replicas(api, namespace, "shop-canary") == ("shop:2.0", 1)
    assert len(pods(api, namespace, "canary")) == 1
    assert weights_of(api, namespace) == {"shop": 90, "shop-canary": 10}

    r2 = run_stage(pytester, "canary-2", "--image=shop:2.0", "-n", "2")
    assert r2.ret == 0, r2.stdout.str()
    assert image_and_replicas(api, namespace, "shop-canary") == ("shop:2.0", 2)
    assert len(pods(api, namespace, "canary")) == 2
    assert weights_of(api, namespace) == {"shop": 50, "shop-canary": 50}

    r3 = run_stage(pytester, "canary-3", "--image=shop:2.0")
    assert r3.ret == 0, r3.stdout.str()
    assert_only_main(api, namespace, "shop:2.0", 3)

    cases = stage_cases(pytester.path, "canary-3")
    assert cases["promote:main"][0] == "passed"
    runs = ledger_runs(api, namespace)  # the ledger lives in the cluster
    assert [(r["stage"], r["outcome"]) for r in runs] == [
        ("canary-1", "passed"),
        ("canary-2", "passed"),
        ("canary-3", "passed"),
    ]
    lease = api.get(LEASES, namespace, "pytest-release-rollout-shop")
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")


RESTARTS_CONFTEST = """
from pytest_release.canary.platforms.kubernetes.client import PODS, KubeApi
from pytest_release.canary.platforms.kubernetes.config import ClusterAccess

def pytest_runtest_setup(item):
    # The canary's container "crashes" after it was deployed: kwok restarts nothing,
    # so the restart count is set the way the kubelet reports it (status subresource).
    if item.name != "traffic":
        return
    api = KubeApi(ClusterAccess(kubeconfig={kubeconfig!r}))
    for pod in api.list(PODS, {namespace!r}, "app=shop,version=canary"):
        statuses = [dict(s, restartCount=3) for s in pod["status"]["containerStatuses"]]
        api.merge_patch(PODS, {namespace!r}, pod["metadata"]["name"],
                        {{"status": {{"containerStatuses": statuses}}}}, subresource="status")
"""


def test_canary_with_restarts_is_rolled_back(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    project(
        pytester,
        stage_toml(namespace, kube_cluster.kubeconfig, router="gateway", ledger="file"),
        **{
            "conftest.py": RESTARTS_CONFTEST.format(
                kubeconfig=str(kube_cluster.kubeconfig), namespace=namespace
            )
        },
    )
    api = kube_cluster.api()
    result = run_stage(pytester, "canary-1", "--image=shop:2.0")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*release stage canary-1: rolled-back*"])
    cases = stage_cases(pytester.path, "canary-1")
    outcome, message, _ = cases["health@1s"]
    assert outcome == "failure"
    assert "canary replicas restarted 3 times" in message
    assert "> 0" in message
    assert cases["verdict"][0] == "skipped"
    for step in ("rollback:traffic", "rollback:canary", "rollback:main"):
        assert cases[step][0] == "passed", cases[step]
    assert image_and_replicas(api, namespace, "shop") == ("shop:1.0", 2)
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    assert weights_of(api, namespace, "gateway") == {"shop": 100}
    runs = json.loads((pytester.path / ".pytest-release" / "ledger.json").read_text())["runs"]
    assert runs[-1]["outcome"] == "rolled-back"


def test_rollback_stage_restores_the_previous_image_and_deletes_canary_resources(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    rollout = rollout_for(namespace, kube_cluster.kubeconfig)
    rollout.deploy_canary("shop:2.0", 1)
    rollout.promote("shop:2.0", 2)
    rollout.deploy_canary("shop:3.0", 1)  # a canary of the next release is running too
    rollout.shift(10)
    api = kube_cluster.api()
    assert image_and_replicas(api, namespace, "shop") == ("shop:2.0", 2)

    cluster_project(pytester, kube_cluster, namespace)
    # No ledger entry says what shop:2.0's release did: the image to take out is named.
    result = run_stage(pytester, "rollback", "--release-image=shop:2.0")
    assert result.ret == 0, result.stdout.str()
    assert_only_main(api, namespace, "shop:1.0", 2)
    cases = stage_cases(pytester.path, "rollback")
    assert {name: c[0] for name, c in cases.items()} == {
        "rollback:traffic": "passed",
        "rollback:canary": "passed",
        "rollback:main": "passed",
    }


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"stage did not end:\n{output}") from None
    return output


def test_two_concurrent_stage_runs_the_second_fails_on_the_lock(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    api = cluster_project(pytester, kube_cluster, namespace, hold="60s", interval="2s")
    first = start_stage(pytester.path, "canary-1", "--image=shop:2.0")
    try:
        wait_for(
            "the first run to hold the Lease",
            lambda: (
                (api.get(LEASES, namespace, "pytest-release-rollout-shop") or {}).get("spec") or {}
            ).get("holderIdentity"),
        )
        second = run_stage(pytester, "canary-1", "--image=shop:2.0")
        assert second.ret == 4, second.stdout.str()  # usage error: refused to start
        second.stderr.fnmatch_lines(
            [
                "*cannot start stage 'canary-1': another rollout holds the lock "
                "(stage canary-1 of release r1, pid * on *, since *); wait for it to finish"
                f"*Lock: Lease {namespace}/pytest-release-rollout-shop"
            ]
        )
        wait_for("the canary to be deployed", lambda: pods(api, namespace, "canary"))
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)  # CI cancel: the first run rolls back
        output = _finish(first)
    assert "rolled back after the stage was interrupted" in output, output
    outcomes = [(r["stage"], r["outcome"]) for r in ledger_runs(api, namespace)]
    assert outcomes == [("canary-1", "interrupted")]  # the refused run left no entry
    lease = api.get(LEASES, namespace, "pytest-release-rollout-shop")
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")
    assert image_and_replicas(api, namespace, "shop-canary") is None


def test_api_server_stopped_mid_stage_is_a_clear_error_and_the_ledger_says_interrupted(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    api = cluster_project(
        pytester, kube_cluster, namespace, ledger="file", hold="4s", interval="2s"
    )
    with stage_process(pytester.path, "canary-1", "--image=shop:2.0") as stage:
        try:
            wait_for_first_step(api, namespace)
            kube_cluster.stop_apiserver()
            output = _finish(stage)
        finally:
            kube_cluster.start_again()
    server = api.server
    assert "release stage canary-1: interrupted" in output, output
    assert f"the Kubernetes API server at {server} did not answer" in output, output
    assert "run the stage again or `pytest --stage=rollback`" in output
    runs = json.loads((pytester.path / ".pytest-release" / "ledger.json").read_text())["runs"]
    assert runs[-1]["outcome"] == "interrupted"
    assert f"the Kubernetes API server at {server} did not answer" in runs[-1]["message"]
    assert stage.returncode not in (0, None)


def test_kubernetes_settings_are_checked_before_the_stage_starts(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        textwrap.dedent(
            """
            [stages.canary-1]
            requires = []
            [gates.canary.platform]
            type = "kubernetes"
            app = "shop"
            """
        ),
    )
    result = run_stage(pytester, "canary-1", "--image=shop:2.0")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*gates.canary in *: platform.type = 'kubernetes' cannot be routed by "
            "router.type = 'haproxy'*: set router.type = 'traefik'*"
        ]
    )
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()


def test_invalid_kubernetes_platform_values_name_the_key(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        textwrap.dedent(
            """
            [gates.canary.platform]
            type = "kubernetes"
            app = "Shop_1"
            [gates.canary.router]
            type = "traefik"
            """
        ),
    )
    result = run_stage(pytester, "canary-1", "--image=shop:2.0", "--override-requires=test")
    assert result.ret == 4
    text = result.stderr.str()
    assert "gates.canary.platform.app = 'Shop_1': Value error, name 'Shop_1' is not a valid " in (
        text
    )
    # Only the member of the platform union whose type matched is reported.
    assert "LocalPlatformConfig" not in text
    assert "local-process" not in text
    assert "gates.canary.platform.type" not in text


def test_local_platform_mistakes_do_not_mention_the_kubernetes_platform(
    pytester: pytest.Pytester,
) -> None:
    project(
        pytester,
        textwrap.dedent(
            """
            [gates.canary.platform]
            command = ["python3", "app.py"]
            stable_imag = "v1"
            """
        ),
    )
    result = run_stage(pytester, "canary-1", "--image=v2", "--override-requires=test")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid release configuration in *pyproject.toml:",
            "  gates.canary.platform.stable_imag: unknown key (value 'v1'); check the spelling",
        ]
    )
    assert "KubernetesPlatformConfig" not in result.stderr.str()
    assert "platform.type" not in result.stderr.str()


def test_unreachable_ledger_cluster_is_a_clear_usage_error(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
            users: [{name: u, user: {token: "x"}}]
            contexts: [{name: c, context: {cluster: c, user: u}}]
            current-context: c
            """
        )
    )
    project(
        pytester,
        f'[ledger]\nbackend = "kubernetes"\nkubeconfig = "{kubeconfig}"\n',
        **{"test_a.py": "import pytest\n@pytest.mark.gate('unit')\ndef test_a(): pass\n"},
    )
    result = run_stage(pytester, "uat")
    assert result.ret == 4, result.stdout.str()
    result.stderr.fnmatch_lines(
        ["*the Kubernetes API server at https://127.0.0.1:9 did not answer*configmaps*"]
    )


def _stage_leases(api: object, namespace: str) -> list[dict[str, Any]]:
    from pytest_release.canary.platforms.kubernetes.client import KubeApi
    from pytest_release.canary.platforms.kubernetes.stage_lease import STAGE_LEASE_LABEL

    assert isinstance(api, KubeApi)
    return api.list(LEASES, namespace, f"{STAGE_LEASE_LABEL}=true")


def test_sigkill_of_a_stage_during_a_hold_leaves_an_abandoned_lease_that_rollback_reconciles(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    """The Kubernetes ledger carries the stage's lease: a stage killed in its hold (no
    handler runs) shows ABANDONED once its Lease expired, every other stage refuses, and
    the release's rollback stage reconciles it (100% stable, canary gone, recorded)."""
    api = cluster_project(
        pytester, kube_cluster, namespace, hold="120s", interval="2s", lease_ttl="2s"
    )
    with stage_process(pytester.path, "canary-1", "--image=shop:2.0") as stage:
        wait_for_first_step(api, namespace, timeout=120)
        leases = wait_for("the stage's Lease", lambda: _stage_leases(api, namespace))
        stage.kill()  # SIGKILL: no handler, no rollback
        stage.communicate(timeout=60)
    pid = stage.pid
    notes = leases[0]["metadata"]["annotations"]
    assert notes["pytest-release/pid"] == str(pid)
    assert [(r["stage"], r["outcome"]) for r in ledger_runs(api, namespace)] == [
        ("canary-1", "running")
    ]
    # The canary keeps its weight: nothing in the cluster judged it.
    assert weights_of(api, namespace) == {"shop": 90, "shop-canary": 10}

    def abandoned_status() -> str | None:
        text = pytester.runpytest_subprocess("--release-status", "--release-id=r1").stdout.str()
        return text if "ABANDONED" in text else None

    status = wait_for("--release-status to show the rollout abandoned", abandoned_status)
    assert f"pid {pid}" in status
    assert "last heartbeat was" in status
    assert "pytest --stage=rollback --release-id=r1" in status
    assert f"Lease {namespace}/pytest-release-rollout-shop-stage-" in status

    assert_refused_while_abandoned(pytester, pid, new_image="shop:3.0", release_image="shop:2.0")

    # The dead stage's rollout lock (lease_duration 15 s) has not expired yet: the rollback
    # takes it over because its holder's stage Lease did.
    reconcile = run_stage(pytester, "rollback")
    assert reconcile.ret == 0, reconcile.stdout.str()
    assert weights_of(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop") == ("shop:1.0", 2)  # never promoted
    assert image_and_replicas(api, namespace, "shop-canary") is None
    runs = ledger_runs(api, namespace)
    dead = next(r for r in runs if r["stage"] == "canary-1")
    assert dead["outcome"] == "rolled-back"
    assert dead["message"].startswith("abandoned: the stage process died without ending")
    assert dead["details"]["abandoned"]["pid"] == pid
    assert (runs[-1]["stage"], runs[-1]["outcome"]) == ("rollback", "passed")
    assert _stage_leases(api, namespace) == []
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1").stdout.str()
    assert "rolled-back (abandoned)" in status
    assert "ABANDONED" not in status

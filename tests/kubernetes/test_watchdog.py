"""The Kubernetes dead man's switch (``python -m pytest_release k8s-watchdog``) against a
real API server: a canary stage SIGKILLed during its hold loses its traffic when its stage
Lease expires, without any pytest-release stage running; the rollout stays abandoned
until the rollback stage reconciles it.  The watchdog runs with a token of its manifest's
ServiceAccount, so its Role is what is exercised; the manifest passes a server-side dry
run, and the Role grants exactly what the watchdog does (SubjectAccessReviews)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS, SERVICE_ACCOUNTS
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.k8s_support import (
    cluster_project,
    image_and_replicas,
    ledger_runs,
    wait_for,
    wait_for_first_step,
    weights_of,
    weights_of_or_none,
)
from tests.kubernetes.test_platform import _token_kubeconfig
from tests.kubernetes.test_stages import _stage_leases
from tests.support.spine import run_stage, start_stage


def _watchdog(namespace: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest_release", "k8s-watchdog", *args,
        f"--namespace={namespace}", "--app=shop",
    ]  # fmt: skip


WATCHDOG = "pytest-release-watchdog-shop"  # the manifest's names (--app=shop)


def _manifest(namespace: str, directory: Path) -> Path:
    result = subprocess.run(
        [*_watchdog(namespace, "manifest"), "--image=shop:1.0"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = directory / "watchdog.json"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def _watchdog_kubeconfig(kube_cluster: KwokCluster, namespace: str, directory: Path) -> Path:
    """The manifest applied; a kubeconfig with a token of its ServiceAccount (nothing else
    grants that identity anything)."""
    kube_cluster.kubectl("apply", "-n", namespace, "-f", str(_manifest(namespace, directory)))
    token = kube_cluster.api().request(
        "POST",
        SERVICE_ACCOUNTS,
        namespace,
        WATCHDOG,
        subresource="token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    return _token_kubeconfig(kube_cluster, token)


def test_watchdog_switches_a_dead_stages_canary_to_stable_and_leaves_it_abandoned(
    pytester: pytest.Pytester, kube_cluster: KwokCluster, namespace: str
) -> None:
    api = cluster_project(
        pytester, kube_cluster, namespace, hold="120s", interval="2s", lease_ttl="2s"
    )
    identity = _watchdog_kubeconfig(kube_cluster, namespace, pytester.path)
    watchdog = subprocess.Popen(
        [
            *_watchdog(namespace, "run"),
            f"--kubeconfig={identity}",
            "--interval=0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stage = start_stage(pytester.path, "canary-1", "--image=shop:2.0")
    try:
        wait_for_first_step(api, namespace, timeout=120)
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
            # The canary Service is no backend at all (not weight 0): Traefik refuses a
            # TraefikService naming a Service without serving endpoints.
            return weights_of_or_none(api, namespace) == {"shop": 100}

        wait_for("the watchdog's switch to 100% stable", switched, timeout=120)
        print(f"100% stable {time.time() - killed_at:.2f}s after SIGKILL (lease_ttl 2s)")
        # Scaled to 0 once the router let go of it (here: after --drain-delay, 2 s).
        wait_for(
            "the canary scaled to 0",
            lambda: (api.get(DEPLOYMENTS, namespace, "shop-canary") or {})["spec"]["replicas"] == 0,
        )
        lease = _stage_leases(api, namespace)[0]
        assert "pytest-release/switched" in lease["metadata"]["annotations"]
    finally:
        for process in (stage, watchdog):
            if process.poll() is None:
                process.kill()
        stage.communicate()
        output, _ = watchdog.communicate()
    assert "switched to 100% stable: the stage died: stage canary-1 of release r1" in output
    assert "forbidden" not in output, output  # its Role is enough
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
    manifest = _manifest(namespace, tmp_path)
    document = json.loads(manifest.read_text())
    kinds = [item["kind"] for item in document["items"]]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "Deployment"]
    dry = kube_cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(manifest))
    assert f"deployment.apps/{WATCHDOG} created (server dry run)" in dry.stdout
    assert f"role.rbac.authorization.k8s.io/{WATCHDOG} created (server dry run)" in dry.stdout
    applied = kube_cluster.kubectl("apply", "-n", namespace, "-f", str(manifest))
    assert f"deployment.apps/{WATCHDOG} created" in applied.stdout
    container = document["items"][3]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:5] == ["python", "-m", "pytest_release", "k8s-watchdog", "run"]


# What the watchdog does (read the stage Leases, mark one switched, rewrite the
# TraefikService after reading the main Service's endpoints, scale the canary by a patch),
# and what it must not be able to do.
ALLOWED = [
    ("list", "leases.coordination.k8s.io"),
    ("get", "leases.coordination.k8s.io"),
    ("patch", "leases.coordination.k8s.io"),
    ("get", "traefikservices.traefik.io"),
    ("patch", "traefikservices.traefik.io"),
    ("get", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("list", "endpointslices.discovery.k8s.io"),
]
DENIED = [
    ("delete", "leases.coordination.k8s.io"),
    ("create", "traefikservices.traefik.io"),
    ("update", "traefikservices.traefik.io"),
    ("delete", "traefikservices.traefik.io"),
    ("create", "deployments.apps"),
    ("delete", "deployments.apps"),
    ("patch", "services"),
    ("delete", "services"),
    ("get", "secrets"),
    ("get", "configmaps"),
    ("update", "configmaps"),
    ("create", "pods"),
    ("patch", "httproutes.gateway.networking.k8s.io"),
    ("get", "customresourcedefinitions.apiextensions.k8s.io"),
]


def test_watchdog_role_grants_exactly_what_it_does(
    kube_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    kube_cluster.kubectl("apply", "-n", namespace, "-f", str(_manifest(namespace, tmp_path)))
    who = f"--as=system:serviceaccount:{namespace}:{WATCHDOG}"

    def can(verb: str, resource: str, where: str = namespace) -> str:
        # kubectl auth can-i: a SubjectAccessReview for the impersonated ServiceAccount.
        answer = kube_cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", where, who, check=False
        )
        return answer.stdout.strip()

    assert {(v, r): can(v, r) for v, r in ALLOWED} == {(v, r): "yes" for v, r in ALLOWED}
    assert {(v, r): can(v, r) for v, r in DENIED} == {(v, r): "no" for v, r in DENIED}
    # A Role: nothing in another namespace.
    assert can("patch", "deployments.apps", "default") == "no"
    assert can("patch", "traefikservices.traefik.io", "default") == "no"

"""The demo pipeline on Kubernetes: ``scripts/pipeline.py --platform kubernetes`` runs the
cluster stages (canary-1, canary-2, canary-3, smoke) of the reference shop on the real node
and prints the same summary as on the local platform.

The main Deployment, Service and RBAC-free set-up come from ``deploy/kubernetes/example``
(image: the shop's stable build, one replica); Traefik routes its entrypoint to the
TraefikService the router manages.  The script runs inside the cluster's network namespace
(``--sample-pods``: the holds send real requests to the pods and through Traefik) in a copy
of the repository's examples, suites and scripts, like tests/test_pipeline.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_release.canary.platforms.kubernetes.client import KubeApi
from tests.kubernetes.k8s_support import image_and_replicas, weights_of
from tests.kubernetes_node.apps import apply, rollout
from tests.kubernetes_node.cluster import NodeCluster
from tests.kubernetes_node.stages import ingress_route

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "kubernetes" / "example"
STABLE = "local/shop:stable"
RELEASE = "localhost/pytest-release/shop:k8s-release"


@pytest.fixture(scope="module")
def shop_images(
    node_cluster: NodeCluster, docker_client: Any, base_image: str, tmp_path_factory: Any
) -> None:
    """The shop's stable and release images (examples/shop), imported into the node."""
    for tag, version in ((STABLE, "stable"), (RELEASE, "k8s-release")):
        docker_client.images.build(
            path=str(ROOT / "examples" / "shop"),
            tag=tag,
            buildargs={"SHOP_VERSION": version},
            network_mode="host",
            rm=True,
        )
    archive = tmp_path_factory.mktemp("shop-images") / "shop.tar"
    subprocess.run(["docker", "save", "-o", str(archive), STABLE, RELEASE], check=True)
    node_cluster.ctr("images", "import", "--no-unpack=false", str(archive))
    archive.unlink()


def _example(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLE / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("examples", "suites", "scripts"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "conftest.py"):
        shutil.copy(ROOT / name, copy)
    return copy


def test_pipeline_runs_the_cluster_stages_on_kubernetes(
    node_cluster: NodeCluster,
    shop_images: None,
    namespace: str,
    repo_copy: Path,
    api: KubeApi,
) -> None:
    main = _example("deployment.yaml")
    main["spec"]["replicas"] = 1
    [container] = main["spec"]["template"]["spec"]["containers"]
    container["image"] = STABLE
    container["readinessProbe"]["periodSeconds"] = 1
    apply(node_cluster, namespace, main, _example("service.yaml"), ingress_route(namespace))
    rollout(node_cluster, namespace, "shop")

    command = [
        "env", "-C", str(repo_copy), sys.executable, "scripts/pipeline.py",
        "--platform", "kubernetes", "--kubeconfig", str(node_cluster.kubeconfig),
        "--namespace", namespace, "--image", RELEASE,
        "--router-url", node_cluster.traefik_url, "--sample-pods",
    ]  # fmt: skip
    result = node_cluster.run_in_netns(command, timeout=900, check=False)
    out = result.stdout + result.stderr
    logs = "\n".join(
        f"--- {log.name}\n{log.read_text()[-3000:]}"
        for log in sorted((repo_copy / "reports" / "demo").glob("*.log"))
    )
    assert result.returncode == 0, out + logs
    assert "pipeline summary for release" in out, out
    for stage in ("canary-1", "canary-2", "canary-3", "smoke"):
        assert re.search(rf"^  {stage} +passed ", out, re.MULTILINE), out
    assert re.search(r"^  (uat|build) ", out, re.MULTILINE) is None, out  # not on a cluster
    verdicts = re.findall(r"^    health@\S+ +(\w+) ", out, re.MULTILINE)
    assert verdicts, out
    assert set(verdicts) == {"pass"}, out
    assert f"production (Traefik): {node_cluster.traefik_url}, namespace {namespace}" in out

    # The cluster: main on the release, 3 pods, all traffic to it, no canary left.
    assert image_and_replicas(api, namespace, "shop") == (RELEASE, 3)
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert weights_of(api, namespace) == {"shop": 100}
    runs = json.loads((repo_copy / ".pytest-release" / "ledger.json").read_text())["runs"]
    assert [(r["stage"], r["outcome"]) for r in runs] == [
        ("canary-1", "passed"),
        ("canary-2", "passed"),
        ("canary-3", "passed"),
        ("smoke", "passed"),
    ]
    print(out)  # the summary (pytest -s)

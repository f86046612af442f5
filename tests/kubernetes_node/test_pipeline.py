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
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_release.canary.platforms.kubernetes.client import KubeApi
from tests.kubernetes.k8s_support import image_and_replicas, wait_for, weights_of
from tests.kubernetes_node.apps import apply, rollout
from tests.kubernetes_node.cluster import NodeCluster
from tests.kubernetes_node.stages import Load, ingress_route
from tests.kubernetes_node.traefik_watch import TraefikTimeline

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


def _main_on_stable(node_cluster: NodeCluster, namespace: str) -> None:
    """The example's main Deployment (one replica of the stable build), Service and route."""
    main = _example("deployment.yaml")
    main["spec"]["replicas"] = 1
    [container] = main["spec"]["template"]["spec"]["containers"]
    container["image"] = STABLE
    container["readinessProbe"]["periodSeconds"] = 1
    apply(node_cluster, namespace, main, _example("service.yaml"), ingress_route(namespace))
    rollout(node_cluster, namespace, "shop")


def _pipeline(node_cluster: NodeCluster, namespace: str, repo_copy: Path) -> list[str]:
    return [
        "env", "-C", str(repo_copy), sys.executable, "scripts/pipeline.py",
        "--platform", "kubernetes", "--kubeconfig", str(node_cluster.kubeconfig),
        "--namespace", namespace, "--image", RELEASE,
        "--router-url", node_cluster.traefik_url, "--sample-pods",
        "--traefik-api", node_cluster.traefik_api_url,
    ]  # fmt: skip


def test_pipeline_runs_the_cluster_stages_on_kubernetes(
    node_cluster: NodeCluster,
    shop_images: None,
    namespace: str,
    repo_copy: Path,
    api: KubeApi,
) -> None:
    _main_on_stable(node_cluster, namespace)
    command = _pipeline(node_cluster, namespace, repo_copy)
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
    served = f"production (Traefik): {node_cluster.traefik_url} serves k8s-release, namespace"
    assert f"{served} {namespace}" in out, out
    # Rollbacks and promotions wait for Traefik's API, not router.drain_delay.
    profile = (repo_copy / "reports" / "demo" / "kubernetes.toml").read_text()
    assert f'api_url = "{node_cluster.traefik_api_url}"' in profile, profile

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


def test_sigint_to_the_pipelines_process_group_during_a_hold_rolls_back_and_exits_130(
    node_cluster: NodeCluster,
    shop_images: None,
    namespace: str,
    repo_copy: Path,
    api: KubeApi,
    load: Callable[[], Load],
) -> None:
    """Ctrl-C (SIGINT to the pipeline's process group) during canary-1's hold: the pipeline
    passes it to the stage once and waits; the stage rolls back (100 % stable, canary gone,
    main unchanged) and records it; the pipeline exits 130 without a traceback, and the load
    through Traefik sees no request reach the canary once Traefik applied the rollback."""
    _main_on_stable(node_cluster, namespace)
    demo = repo_copy / "suites" / "demo.toml"  # the copy's: a hold long enough to interrupt
    held = demo.read_text().replace(
        '[stages.canary-1.rollout]\nhold = "12s"', '[stages.canary-1.rollout]\nhold = "600s"'
    )
    assert held != demo.read_text(), "suites/demo.toml no longer sets canary-1's hold"
    demo.write_text(held)
    timeline = TraefikTimeline(node_cluster, namespace)
    with timeline:
        during = load()
        # Its own process group, as a shell gives a foreground job (``ip netns exec`` and
        # ``env`` exec the pipeline: the group's leader is the pipeline itself).
        pipeline = subprocess.Popen(
            node_cluster.netns_command(_pipeline(node_cluster, namespace, repo_copy)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            wait_for("canary-1's hold at 10 %", lambda: _weights(api, namespace) == HOLD, 600)
            wait_for("canary-1's first judged interval", lambda: _judged(repo_copy), 120)
            os.killpg(pipeline.pid, signal.SIGINT)
            interrupted_at = time.time()
            out, err = pipeline.communicate(timeout=600)
        finally:
            if pipeline.poll() is None:
                os.killpg(pipeline.pid, signal.SIGKILL)  # our own group, on failure only
                pipeline.communicate()
        traffic = during.result()
    stage_log = (repo_copy / "reports" / "demo" / "canary-1.log").read_text(errors="replace")
    print(f"Traefik applied (its API):\n{timeline.describe()}\n{out}")
    assert pipeline.returncode == 130, out + err + stage_log
    assert "Traceback" not in out + err, out + err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("pipeline interrupted by SIGINT during canary-1: "), out
    assert "rolled back after the stage was interrupted" in summary, out
    # One signal reached the stage (the pipeline's), not a second one from the group.
    assert "ignored: the stage is being stopped" not in stage_log, stage_log
    # The cluster: 100 % stable, the canary gone, main unchanged (the release never promoted).
    assert weights_of(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert image_and_replicas(api, namespace, "shop") == (STABLE, 1)
    runs = json.loads((repo_copy / ".pytest-release" / "ledger.json").read_text())["runs"]
    assert [(r["stage"], r["outcome"]) for r in runs] == [("canary-1", "interrupted")], runs
    assert "traffic 100% to the main deployment" in runs[-1]["message"], runs[-1]
    # Through Traefik: nothing lost, and the canary answered no request sent after Traefik
    # applied the rollback (a TraefikService without the canary).
    assert traffic["lost"] == [], f"{traffic}\n{timeline.describe()}"
    rolled_back = next(
        at for at, state in timeline.changes
        if at > interrupted_at and state.startswith("weighted") and "shop-canary" not in state
    )  # fmt: skip
    assert traffic["last"]["k8s-release"] < rolled_back, f"{traffic}\n{timeline.describe()}"
    assert traffic["last"]["stable"] > rolled_back, traffic


HOLD = {"shop": 90, "shop-canary": 10}


def _judged(repo_copy: Path) -> bool:
    log = repo_copy / "reports" / "demo" / "canary-1.log"
    return log.exists() and "interval 1 " in log.read_text(errors="replace")


def _weights(api: KubeApi, namespace: str) -> dict[str, int] | None:
    try:
        return weights_of(api, namespace)
    except (KeyError, TypeError):  # the TraefikService does not exist yet
        return None

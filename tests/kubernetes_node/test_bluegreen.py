"""Blue/green on the real node: the idle colour is judged with HTTP checks (directly to its
pods) while Traefik sends it no production traffic, then traffic switches in one weight
change and back; a load loop through Traefik loses no request across both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_release.canary.platforms.kubernetes.client import KubeApi
from tests.kubernetes.k8s_support import image_and_replicas, pods, weights_of
from tests.kubernetes_node.cluster import NodeCluster
from tests.kubernetes_node.stages import Load, Project, stage_toml
from tests.support.stages import bluegreen_stages

BLUEGREEN = bluegreen_stages(1, "6s", "2s")


def test_switch_and_switch_back_lose_no_request_through_traefik(
    node_cluster: NodeCluster,
    fault_images: dict[str, str],
    project: Project,
    api: KubeApi,
    namespace: str,
    load: Callable[[], Load],
    tmp_path: Path,
) -> None:
    toml = stage_toml(namespace, node_cluster.kubeconfig, node_cluster.traefik_url, extra=BLUEGREEN)
    (tmp_path / "bluegreen").mkdir()
    # The project fixture routes Traefik's entrypoint to the namespace; this project adds
    # the blue/green stages to the same seed settings.
    bluegreen = Project(node_cluster, tmp_path / "bluegreen", namespace, toml)
    old, new = fault_images["1"], fault_images["2"]
    traffic = load()

    rc, out = bluegreen.stage("bluegreen-deploy", new, "r1")
    assert rc == 0, out
    assert image_and_replicas(api, namespace, "shop") == (old, 1)
    assert image_and_replicas(api, namespace, "shop-canary") == (new, 1)
    assert weights_of(api, namespace) == {"shop": 100, "shop-canary": 0}
    outcome, _, props = bluegreen.cases("bluegreen-deploy")["verdict"]
    assert outcome == "passed"

    rc, out = bluegreen.stage("bluegreen-switch", new, "r1")
    assert rc == 0, out
    assert weights_of(api, namespace) == {"shop": 0, "shop-canary": 100}
    outcome, _, props = bluegreen.cases("bluegreen-switch")["switch:verify"]
    assert outcome == "passed"
    assert props["router.requests_checked"] == "20"  # through Traefik, all on the new colour
    assert len(pods(api, namespace, "stable")) == 1  # the warm standby

    rc, out = bluegreen.stage("rollback", new, "r1")
    assert rc == 0, out
    assert weights_of(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert image_and_replicas(api, namespace, "shop") == (old, 1)

    seen = traffic.result()
    assert seen["lost"] == [], seen
    assert seen["versions"].get("1", 0) > 0, seen
    assert seen["versions"].get("2", 0) > 0, seen  # production traffic reached the new colour

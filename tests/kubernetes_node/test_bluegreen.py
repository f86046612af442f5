"""Blue/green on the real node: the idle colour is judged with HTTP checks (directly to its
pods) while Traefik sends it no production traffic, then traffic switches in one weight
change and back; a load loop through Traefik loses no request across both."""

from __future__ import annotations

from pathlib import Path

from tests.kubernetes.k8s_support import image_and_replicas, pods, weights_of
from tests.kubernetes_node.stages import NodeBed, Project
from tests.support.stages import bluegreen_stages

BLUEGREEN = bluegreen_stages(1, "6s", "2s")


def test_switch_and_switch_back_lose_no_request_through_traefik(
    project: Project,
    bed: NodeBed,
    tmp_path: Path,
) -> None:
    toml = bed.stage_toml(extra=BLUEGREEN)
    (tmp_path / "bluegreen").mkdir()
    # The project fixture routes Traefik's entrypoint to the namespace; this project adds
    # the blue/green stages to the same seed settings.
    bluegreen = Project(bed.cluster, tmp_path / "bluegreen", bed.namespace, toml)
    old, new = bed.images["1"], bed.images["2"]
    traffic = bed.load()

    rc, out = bluegreen.stage("bluegreen-deploy", new, "r1")
    assert rc == 0, out
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (old, 1)
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") == (new, 1)
    assert weights_of(bed.api, bed.namespace) == {"shop": 100, "shop-canary": 0}
    outcome, _, props = bluegreen.cases("bluegreen-deploy")["verdict"]
    assert outcome == "passed"

    rc, out = bluegreen.stage("bluegreen-switch", new, "r1")
    assert rc == 0, out
    assert weights_of(bed.api, bed.namespace) == {"shop": 0, "shop-canary": 100}
    outcome, _, props = bluegreen.cases("bluegreen-switch")["switch:verify"]
    assert outcome == "passed"
    assert props["router.requests_checked"] == "20"  # through Traefik, all on the new colour
    assert len(pods(bed.api, bed.namespace, "stable")) == 1  # the warm standby

    rc, out = bluegreen.stage("rollback", new, "r1")
    assert rc == 0, out
    assert weights_of(bed.api, bed.namespace) == {"shop": 100}
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (old, 1)

    seen = traffic.result()
    assert seen["lost"] == [], seen
    assert seen["versions"].get("1", 0) > 0, seen
    assert seen["versions"].get("2", 0) > 0, seen  # production traffic reached the new colour

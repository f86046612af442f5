"""A canary whose pods stop being ready during a hold, on the real node (issue 29).

canary-1 of the fault service's release 8 holds 10 % of the traffic through Traefik when,
45 s after its start, the canary's /health starts answering 503: its readiness probe
fails, the kubelet marks the pod not ready and the canary Service has no serving endpoint.
Traefik's kubernetescrd provider then leaves the whole weighted TraefikService out of its
configuration (the route answers 404, stable's share included) for as long as the canary
Service stays in it.  The hold must not wait for the end of its 30 s interval: the moment
the platform reports no ready canary replica it takes the canary out of the TraefikService
and fails the canary (``canary_serving``), then the rollback removes it.

The test node's Traefik runs with ``providers.kubernetesCRD.allowEmptyServices=true``
(docs/kubernetes.md recommends it): the canary Service without endpoint stays in the
TraefikService with no server, so the canary's share answers 503 until the canary leaves,
and stable's share keeps being served.  Without it Traefik drops the whole TraefikService
(measured on this node: 406 requests lost over 14 s before the hold watched readiness,
73 over 1.8 s with the watch alone).

A load generator through Traefik runs for the whole stage and a timeline of what Traefik
applied (its API) beside it: Traefik must never drop the TraefikService, no request may get
a 404 or a transport error, and a 503 only while Traefik still routed to the canary.
"""

from __future__ import annotations

import time
from typing import Any

from tests.kubernetes.k8s_support import image_and_replicas, service_exists, weights_of
from tests.kubernetes_node.stages import NodeBed, Project
from tests.kubernetes_node.traefik_watch import TraefikTimeline


def test_canary_that_stops_being_ready_is_taken_out_before_stable_loses_traffic(
    project: Project,
    bed: NodeBed,
) -> None:
    # Production-like intervals (30 s): the judge's own verdict comes only at an interval's
    # end; the router reads Traefik's API to know when a change is applied.
    toml = bed.stage_toml(router=bed.traefik_api_router)
    toml = toml.replace('hold = "6s", interval = "2s"', 'hold = "120s", interval = "30s"')
    unready = Project(bed.cluster, project.root, bed.namespace, toml)
    traffic: dict[str, Any] = {}
    timeline = TraefikTimeline(bed.cluster, bed.namespace)
    started = time.time()
    try:
        with timeline:
            during = bed.load()
            rc, out = unready.stage("canary-1", bed.images["8-unready"], "r8")
            traffic = during.result()
    finally:
        print(f"Traefik applied (its API):\n{timeline.describe()}")
    print(f"stage took {time.time() - started:.1f}s; traffic {traffic}")
    failed = unready.rolled_back(rc, out)
    assert "no canary replica was running and ready" in failed, failed
    assert "the hold took the canary out of the router" in failed, failed
    assert "stable 100% / canary 0%" in failed, failed
    lost = [f"{entry}  [Traefik: {timeline.at(float(entry.split()[0]))}]"
            for entry in traffic["lost"]]  # fmt: skip
    # A 503 is the canary's share answered by its empty server list; anything else (404: no
    # route, transport errors), or a 503 once Traefik routed no request to the canary, is
    # a request stable lost.
    canary_share = [e for e in lost if " HTTP 503 " in e and "shop-canary" in e.split("[")[1]]
    sent = [float(e.split()[0]) for e in canary_share]
    span = f" over {max(sent) - min(sent):.2f}s" if sent else ""
    print(f"{len(canary_share)} requests of the canary's share answered 503{span}")
    stable_lost = [e for e in lost if e not in canary_share]
    assert stable_lost == [], (
        f"{len(stable_lost)} requests lost through Traefik:\n"
        + "\n".join(stable_lost[:40])
        + f"\nTraefik applied:\n{timeline.describe()}"
    )
    built = [at for at, state in timeline.changes if state.startswith("weighted")]
    dropped = [(at, state) for at, state in timeline.changes if built and at > built[0]
               and not state.startswith("weighted")]  # fmt: skip
    assert dropped == [], f"Traefik dropped the TraefikService:\n{timeline.describe()}"
    assert traffic["versions"].get("1", 0) > 0, traffic
    assert traffic["versions"].get("8-unready", 0) > 0, traffic  # the canary took traffic
    # The rollback's end state.
    assert weights_of(bed.api, bed.namespace) == {"shop": 100}
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
    assert not service_exists(bed.api, bed.namespace, "shop-canary")

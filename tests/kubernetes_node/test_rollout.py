"""The seed scenario on the real node: the Kubernetes platform and the Traefik router roll
out the fault service with the judge's HTTP checks on.

The stages are real pytest sessions run inside the cluster's network namespace (where pod
IPs and Traefik's entrypoint are reachable), with ``platform.sample_pods = true`` and
``router.url`` = Traefik's ``web`` entrypoint: the hold sends requests through Traefik and
directly to every pod, probes ``/health`` on every pod and reads restarts from the pods'
real status.  A good release goes 10 % -> 50 % -> main at 100 % with 3 pods; a bad one
(half of its requests answer 500) and a crashing one are rolled back by the canary gate
itself, and so is a slow one (every answer 800 ms late, no error) on latency alone; a
load loop through Traefik loses no request meanwhile, also while the main Deployment is
rolled to the release (its pods sleep ``router.drain_delay`` in a preStop hook).  The ledger and the
rollout lock are the ConfigMap and the Lease of the same cluster.
"""

from __future__ import annotations

import json
import re

from pytest_release.canary.platforms.kubernetes.client import LEASES, KubeApi
from tests.kubernetes.k8s_support import (
    image_and_replicas,
    ledger_runs,
    pods,
    service_exists,
    weights_of,
)
from tests.kubernetes_node.cluster import wait_for
from tests.kubernetes_node.stages import NodeBed, Project


def _judged_requests(out: str) -> list[tuple[int, int]]:
    """(canary, stable) requests of each progress line of a hold."""
    found = re.findall(r"canary: (\d+) req, .*?\| stable: (\d+) req", out)
    return [(int(c), int(s)) for c, s in found]


def _images(api: KubeApi, namespace: str, version: str) -> list[str]:
    return [p["spec"]["containers"][0]["image"] for p in pods(api, namespace, version)]


def test_good_release_promoted_bad_release_rolled_back(
    project: Project,
    bed: NodeBed,
) -> None:
    good, bad = bed.images["2"], bed.images["3-bad"]
    during_good = bed.load()  # counts from the first answer: through every weight change

    rc, out = project.stage("canary-1", good, "r2")
    assert rc == 0, out
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (bed.images["1"], 1)
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") == (good, 1)
    assert weights_of(bed.api, bed.namespace) == {"shop": 90, "shop-canary": 10}
    # The HTTP checks judged real requests to the pods (direct) in every interval.
    judged = _judged_requests(out)
    assert judged, out
    assert all(c > 0 and s > 0 for c, s in judged), out

    rc, out = project.stage("canary-2", good, "r2")
    assert rc == 0, out
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") == (good, 2)
    assert len(pods(bed.api, bed.namespace, "canary")) == 2
    assert weights_of(bed.api, bed.namespace) == {"shop": 50, "shop-canary": 50}

    rc, out = project.stage("canary-3", good, "r2")
    assert rc == 0, out
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (good, 3)
    outcome, _, properties = project.cases("canary-3")["promote:main"]
    assert outcome == "passed"
    assert properties["router.requests_checked"] == "20"  # through Traefik

    def settled() -> bool:
        return _images(bed.api, bed.namespace, "stable") == [good] * 3

    wait_for("the main Deployment's old pods to terminate", settled, timeout=120)
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
    assert not service_exists(bed.api, bed.namespace, "shop-canary")
    assert pods(bed.api, bed.namespace, "canary") == []
    assert weights_of(bed.api, bed.namespace) == {"shop": 100}
    traffic = during_good.result()
    assert traffic["lost"] == [], traffic
    assert traffic["app_errors"] == 0, traffic
    assert traffic["versions"].get("1", 0) > 0, traffic
    assert traffic["versions"].get("2", 0) > 0, traffic

    # A bad release: half of its requests answer 500.  The gate rolls it back itself.
    during_bad = bed.load()
    rc, out = project.stage("canary-1", bad, "r3")
    assert "canary error rate" in project.rolled_back(rc, out), out
    assert weights_of(bed.api, bed.namespace) == {"shop": 100}
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
    assert not service_exists(bed.api, bed.namespace, "shop-canary")
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (good, 3)
    traffic_bad = during_bad.result()
    # 500s of the bad canary are its own errors; no request is lost by the rollback.
    assert traffic_bad["lost"] == [], traffic_bad
    assert traffic_bad["versions"].get("2", 0) > 0, traffic_bad

    # A crashing release: the container exits after 15 requests, the kubelet restarts it.
    rc, out = project.stage("canary-1", bed.images["4-crash"], "r4")
    failed = project.rolled_back(rc, out)
    # Its requests are refused while the kubelet restarts it, its /health probes fail, its
    # restarts show in the pod status, a status poll sees it not ready (the hold then takes
    # it out of the router at once): which of them the failing interval saw first depends
    # on timing (a loaded machine), but it names one of them.
    crash_evidence = (
        r"canary restarts|restarted \d+ times|/health failed: shop-canary-\S+ [1-9]\d*/\d+"
        r"|canary error rate|no canary replica was running and ready"
    )
    assert re.search(crash_evidence, failed + out), failed
    assert weights_of(bed.api, bed.namespace) == {"shop": 100}
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (good, 3)

    # A slow release: every answer 800 ms late, no error.  Rolled back on latency alone.
    during_slow = bed.load()
    rc, out = project.stage("canary-1", bed.images["6-slow"], "r6")
    failed = project.rolled_back(rc, out)
    assert "canary latency (median" in failed, failed
    assert "error rate" not in failed, failed
    assert weights_of(bed.api, bed.namespace) == {"shop": 100}
    assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None
    assert not service_exists(bed.api, bed.namespace, "shop-canary")
    assert pods(bed.api, bed.namespace, "canary") == []
    assert image_and_replicas(bed.api, bed.namespace, "shop") == (good, 3)
    traffic_slow = during_slow.result()
    assert traffic_slow["lost"] == [], traffic_slow
    assert traffic_slow["app_errors"] == 0, traffic_slow
    assert traffic_slow["versions"].get("6-slow", 0) > 0, traffic_slow  # it did serve

    runs = ledger_runs(bed.api, bed.namespace)  # the ConfigMap ledger of this cluster
    assert [(r["stage"], r["outcome"]) for r in runs] == [
        ("canary-1", "passed"),
        ("canary-2", "passed"),
        ("canary-3", "passed"),
        ("canary-1", "rolled-back"),
        ("canary-1", "rolled-back"),
        ("canary-1", "rolled-back"),
    ], json.dumps(runs, indent=1)[:3000]
    lease = bed.api.get(LEASES, bed.namespace, "pytest-release-rollout-shop")
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")  # released after every stage
    print("stage durations:", {k: round(v, 1) for k, v in project.durations.items()})
    print("through Traefik:", traffic, {k: v for k, v in traffic_bad.items() if k != "lost"})

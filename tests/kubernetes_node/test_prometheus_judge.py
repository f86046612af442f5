"""The judge on the real node with Traefik's counters through Prometheus as its only
evidence.

Traefik (the test bed's, its Prometheus metrics on) routes the seed's TraefikService; a
real Prometheus (Debian's, started by the test inside the cluster's network namespace)
scrapes Traefik's ``/metrics`` every second; the stage judges with ``judge.evidence =
["prometheus"]`` (the ``traefik`` query template: ``traefik_service_requests_total`` per
Kubernetes Service) and the sampler off (``rate = 0``, ``direct_rate = 0``): the only
requests are the background load the test sends through Traefik from inside the
namespace.  A canary answering 5 % of its requests with 500 is failed and rolled back, the
verdict naming the Prometheus evidence and its counts; a healthy canary passes (the stage,
not insufficient; a look before the hold has judge.min_requests only waits, pending).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.kubernetes.k8s_support import image_and_replicas, weights_of
from tests.kubernetes_node.apps import apply
from tests.kubernetes_node.cluster import NodeCluster, wait_for
from tests.kubernetes_node.prometheus_node import traefik_prometheus
from tests.kubernetes_node.stages import NodeBed, Project, ingress_route, stage_toml

# 20 % of the load to the canary for 45 s, judged every 6 s: three load loops send tens of
# requests/s (45 when measured; fewer on a loaded machine), so a look sees dozens of canary
# requests and the hold hundreds: a 5 % canary is failed within a few looks (at 18 s when
# measured: 45 s leaves it more than twice that), and a healthy one has judge.min_requests
# for a pass within the first looks (the healthy stage holds all of it: 90 s cost 45 more).
# A look before that is pending (it waits for evidence, neither passes nor stops the stage).
STAGE = """
[stages.canary-prom]
requires = []
gates = ["canary"]
rollout = { action = "canary", hold = "45s", interval = "6s", replicas = 1, weight = 20 }
"""
SAMPLER_OFF = """[gates.canary.sampler]
rate = 0
direct_rate = 0
"""


def _judge(namespace: str, prometheus_url: str) -> str:
    # Traefik names a Kubernetes Service of a TraefikService <namespace>-<name>-<port>.
    canary = f'service=~"{namespace}-shop-canary-[0-9]+@kubernetescrd"'
    stable = f'service=~"{namespace}-shop-[0-9]+@kubernetescrd"'
    return f"""
evidence = ["prometheus"]
max_restarts = 0
min_requests = 20
max_insufficient_intervals = 0
[gates.canary.judge.prometheus]
url = "{prometheus_url}"
template = "traefik"
lag = "3s"
canary_selector = '{canary}'
stable_selector = '{stable}'
"""


def _project(cluster: NodeCluster, root: Path, namespace: str, prometheus_url: str) -> Project:
    root.mkdir()
    toml = stage_toml(
        namespace,
        cluster.kubeconfig,
        cluster.traefik_url,
        judge=_judge(namespace, prometheus_url),
        extra=STAGE,
    )
    toml = re.sub(r"\[gates\.canary\.sampler\]\n(.+\n)+?\n", SAMPLER_OFF + "\n", toml)
    assert "direct_rate = 0" in toml, toml
    return Project(cluster, root, namespace, toml)


def _looks(project: Project) -> list[tuple[str, str, dict[str, str]]]:
    cases = project.cases("canary-prom")
    return [case for name, case in cases.items() if name.startswith("health@")]


@pytest.mark.heavy(106)
def test_prometheus_evidence_alone_fails_a_5_percent_canary_and_passes_a_healthy_one(
    bed: NodeBed, tmp_path: Path
) -> None:
    apply(bed.cluster, bed.namespace, ingress_route(bed.namespace))
    with traefik_prometheus(bed.cluster, tmp_path / "prometheus") as prometheus:
        wait_for(
            "Prometheus to scrape Traefik's metrics",
            lambda: bool(prometheus.query('up{job="canary"} == 1')),
            timeout=60,
        )
        project = _project(bed.cluster, tmp_path / "project", bed.namespace, prometheus.url)
        # through Traefik, from inside the namespace
        loads = [bed.load(), bed.load(), bed.load()]

        rc, out = project.stage("canary-prom", bed.images["7-errors-5"], "r-bad")
        assert rc == 1, out
        assert "release stage canary-prom: rolled-back" in out, out
        looks = _looks(project)
        failed = [case for case in looks if case[0] == "failure"]
        assert len(failed) == 1, looks
        _, message, props = failed[0]
        print(message)  # pytest -s
        # Failed by the threshold (error rate credibly above 1 %) or by the comparison
        # with stable (Fisher), whichever the evidence showed first; both on Prometheus.
        checks = [
            c for c in ("error_rate", "compare_error_rate") if props[f"judge.{c}.verdict"] == "fail"
        ]
        assert checks, props
        for check in ("error_rate", "compare_error_rate"):
            assert props[f"judge.{check}.source"] == "prometheus", props
        assert "prometheus (traefik queries): canary error rate" in message, message
        # What Prometheus counted of the hold so far, per version.
        counts = f"judge.{checks[0]}.requests.prometheus"
        canary = int(props[f"{counts}.canary"])
        errors = int(props[f"{counts}.canary_errors"])
        assert canary >= 20, props
        assert errors > 0, props
        stable = int(props[f"{counts}.stable"])
        assert stable > 0, props
        # The canary's own share of errors, as Prometheus counted it: about 5 %.
        assert 0.02 <= errors / canary <= 0.10, props
        # The message gives the counts the failing window was judged on.
        counted = re.search(r"n=(\d+)(?:, (\d+) errors| canary, (\d+) stable)", message)
        assert counted is not None, message
        assert 0 < int(counted[1]) <= canary, (message, props)
        assert weights_of(bed.api, bed.namespace) == {"shop": 100}
        assert image_and_replicas(bed.api, bed.namespace, "shop-canary") is None

        rc, out = project.stage("canary-prom", bed.images["2"], "r-good")
        assert rc == 0, out
        cases = project.cases("canary-prom")
        assert cases["verdict"][0] == "passed", cases  # not insufficient
        looks = _looks(project)
        assert looks, out
        assert looks[-1][0] == "passed", looks
        for outcome, message, props in looks:
            assert outcome in ("passed", "skipped"), (message, props)
            if outcome == "skipped":  # only waiting for evidence: nothing else was wrong
                lacking = [
                    key.removesuffix(".verdict")
                    for key, value in props.items()
                    if key.endswith(".verdict")
                    and value == "insufficient"
                    and key != "judge.verdict"
                ]
                for check in lacking:
                    assert props.get(f"{check}.pending") == "true", (check, message)
                continue
            assert props["judge.error_rate.verdict"] == "pass", props
            assert props["judge.error_rate.source"] == "prometheus", props
            assert int(props["judge.error_rate.requests.prometheus.canary"]) >= 20, props
        assert image_and_replicas(bed.api, bed.namespace, "shop-canary") == (bed.images["2"], 1)
        results = [running.result() for running in loads]
    # The load reached both versions through Traefik.
    versions = {v for result in results for v in result["versions"]}
    assert {"1", "2"} <= versions, results

"""The platform contract (tests/support/platform_contract.py) on Kubernetes with Traefik
and with a Gateway API route, against the kwok test bed: a real API server and
controllers, fake nodes (no container runs, so no request goes through: every check
reads the state back from the API server, ``requests`` is 0)."""

from __future__ import annotations

import pytest

from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.k8s_support import rollout_for
from tests.support.platform_contract import CASES, Case, Subject, case_ids


@pytest.mark.parametrize("router", ["traefik", "gateway"])
@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_kubernetes_with_its_routers_keeps_the_contract(
    case: Case, router: str, kube_cluster: KwokCluster, namespace: str
) -> None:
    rollout = rollout_for(namespace, kube_cluster.kubeconfig, router=router)
    case(Subject(rollout, stable_image="shop:1.0", release_image="shop:2.0", requests=0))

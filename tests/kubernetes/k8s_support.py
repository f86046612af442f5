"""Helpers for the Kubernetes tests: stage configuration and reading the cluster back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_release.canary.config import SamplerConfig
from pytest_release.canary.judge import JudgeConfig
from pytest_release.canary.platforms.kubernetes.client import (
    DEPLOYMENTS,
    PODS,
    SERVICES,
    Kind,
    KubeApi,
    KubeApiError,
)
from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
from pytest_release.canary.platforms.kubernetes.entry import build_rollout
from pytest_release.canary.platforms.kubernetes.platform import KubernetesPlatform
from pytest_release.canary.rollout import Rollout
from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
from pytest_release.canary.settings import CanarySettings
from tests.kubernetes.conftest import KwokCluster
from tests.support.spine import project

TRAEFIK_SERVICES = Kind("traefik.io", "v1alpha1", "traefikservices", "TraefikService")
HTTP_ROUTES = Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
T = TypeVar("T")


def platform_config(namespace: str, kubeconfig: Path, **extra: Any) -> KubernetesPlatformConfig:
    values: dict[str, Any] = {
        "type": "kubernetes",
        "namespace": namespace,
        "app": "shop",
        "kubeconfig": str(kubeconfig),
        "stable_image": "shop:1.0",
        "stable_replicas": 2,
        "rollout_timeout": 60,
        **extra,
    }
    return KubernetesPlatformConfig.model_validate(values)


def rollout_for(namespace: str, kubeconfig: Path, router: str = "traefik", **extra: Any) -> Rollout:
    platform = platform_config(namespace, kubeconfig, **extra)
    config: TraefikRouterConfig | GatewayRouterConfig
    if router == "traefik":
        config = TraefikRouterConfig(type="traefik")
    else:
        config = GatewayRouterConfig(type="gateway")
    settings = CanarySettings(
        gate="canary",
        platform=platform,
        router=config,
        sampler=SamplerConfig(),
        judge=JudgeConfig(),
        slack=None,
        rollback_on_insufficient=True,
        verify_requests=1,
    )
    return build_rollout(settings, None)


def stage_toml(
    namespace: str,
    kubeconfig: Path,
    *,
    router: str = "traefik",
    ledger: str = "kubernetes",
    hold: str = "2s",
    interval: str = "1s",
    stable_replicas: int = 2,
    lease_ttl: str = "10s",
) -> str:
    """[tool.pytest-release] for canary-1 (10 %), canary-2 (50 %), canary-3 (promote, 3)
    on the test cluster; ``nest_tables`` adds the ``tool.pytest-release.`` prefix."""
    ledger_table = (
        f'backend = "kubernetes"\nnamespace = "{namespace}"\napplication = "shop"\n'
        f'kubeconfig = "{kubeconfig}"\nlease_duration = 15\n'
        if ledger == "kubernetes"
        else 'backend = "file"\n'
    ) + f'lease_ttl = "{lease_ttl}"\n'
    return f"""
[ledger]
{ledger_table}
[stages.canary-1]
requires = []
rollout = {{action = "canary", replicas = 1, weight = 10, hold = "{hold}", interval = "{interval}"}}

[stages.canary-2]
rollout = {{action = "canary", replicas = 2, weight = 50, hold = "{hold}", interval = "{interval}"}}

[gates.canary.platform]
type = "kubernetes"
namespace = "{namespace}"
app = "shop"
stable_image = "shop:1.0"
stable_replicas = {stable_replicas}
kubeconfig = "{kubeconfig}"
rollout_timeout = "60s"

[gates.canary.router]
type = "{router}"

[gates.canary.judge]
http_checks = false

[gates.canary.sampler]
status_interval = "0.25s"
"""


def weights_of(api: KubeApi, namespace: str, router: str = "traefik") -> dict[str, int]:
    """Service name -> weight, as stored in the cluster."""
    if router == "traefik":
        obj = api.get(TRAEFIK_SERVICES, namespace, "shop") or {}
        entries = obj["spec"]["weighted"]["services"]
    else:
        obj = api.get(HTTP_ROUTES, namespace, "shop") or {}
        entries = obj["spec"]["rules"][0]["backendRefs"]
    return {e["name"]: e["weight"] for e in entries}


def deployment(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    return api.get(DEPLOYMENTS, namespace, name)


def image_and_replicas(api: KubeApi, namespace: str, name: str) -> tuple[str, int] | None:
    obj = deployment(api, namespace, name)
    if obj is None:
        return None
    container = obj["spec"]["template"]["spec"]["containers"][0]
    return container["image"], int(obj["spec"]["replicas"])


def pods(api: KubeApi, namespace: str, version: str) -> list[dict[str, Any]]:
    return [
        p
        for p in api.list(PODS, namespace, f"app=shop,version={version}")
        if not p["metadata"].get("deletionTimestamp")
    ]


def service_exists(api: KubeApi, namespace: str, name: str) -> bool:
    return api.get(SERVICES, namespace, name) is not None


def ledger_runs(api: KubeApi, namespace: str) -> list[dict[str, Any]]:
    from pytest_release.canary.platforms.kubernetes.client import CONFIGMAPS

    configmap = api.get(CONFIGMAPS, namespace, "pytest-release-ledger-shop")
    assert configmap is not None, "no ledger ConfigMap"
    runs: list[dict[str, Any]] = json.loads(configmap["data"]["ledger.json"])["runs"]
    return runs


def set_restarts(api: KubeApi, namespace: str, pod: dict[str, Any], restarts: int) -> None:
    """What kwok cannot do by itself: a container restarted (status subresource)."""
    statuses = pod["status"].get("containerStatuses") or []
    assert statuses, f"pod {pod['metadata']['name']} has no container status yet"
    changed = [{**s, "restartCount": restarts} for s in statuses]
    api.merge_patch(
        PODS,
        namespace,
        pod["metadata"]["name"],
        {"status": {"containerStatuses": changed}},
        subresource="status",
    )


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def platform_of(rollout: Rollout) -> KubernetesPlatform:
    assert isinstance(rollout.platform, KubernetesPlatform)
    return rollout.platform


def assert_only_main(api: KubeApi, namespace: str, image: str, replicas: int) -> None:
    """The end state of a promotion or a rollback: main (``shop``) runs ``replicas`` pods of
    ``image``, no canary Deployment, Service or pod is left, and all traffic goes to main."""
    assert image_and_replicas(api, namespace, "shop") == (image, replicas)
    stable_images = [p["spec"]["containers"][0]["image"] for p in pods(api, namespace, "stable")]
    assert stable_images == [image] * replicas
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    assert pods(api, namespace, "canary") == []
    assert weights_of(api, namespace) == {"shop": 100}


def weights_of_or_none(api: KubeApi, namespace: str) -> dict[str, int] | None:
    """The router's weights, or None while the cluster does not answer or has none."""
    try:
        return weights_of(api, namespace)
    except (KubeApiError, KeyError, TypeError):
        return None


def wait_for_first_step(api: KubeApi, namespace: str, timeout: float = 60) -> None:
    """Until canary-1 sends 10 % of the traffic to the canary."""
    wait_for(
        "10% of the traffic on the canary",
        lambda: weights_of_or_none(api, namespace) == {"shop": 90, "shop-canary": 10},
        timeout=timeout,
    )


def cluster_project(
    pytester: pytest.Pytester,
    cluster: KwokCluster,
    namespace: str,
    more_toml: str = "",
    **settings: Any,
) -> KubeApi:
    """The project of the seed stages (``stage_toml`` with ``settings``, then
    ``more_toml``) on ``cluster``'s ``namespace``; returns the cluster's API."""
    project(pytester, stage_toml(namespace, cluster.kubeconfig, **settings) + more_toml)
    return cluster.api()

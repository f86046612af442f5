"""The Kubernetes platform, routers and ledger against a real API server (kwok cluster)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from pytest_release.canary.platforms.kubernetes.client import (
    LEASES,
    REPLICASETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    STRATEGIC_MERGE_PATCH,
    Kind,
    KubeApiError,
)
from pytest_release.canary.platforms.kubernetes.ledger_store import KubernetesLedgerStore
from pytest_release.canary.rollout import Rollout
from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
from pytest_release.canary.routers.gateway.router import GatewayRouter
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
from pytest_release.canary.routers.traefik.router import TraefikRouter
from pytest_release.config.plain_tables import LedgerConfig
from pytest_release.errors import LedgerError, PlatformError, RouterError
from pytest_release.ledger.ledger import Ledger, LedgerEntry
from tests.kubernetes.conftest import REPO, KwokCluster
from tests.kubernetes.k8s_support import (
    HTTP_ROUTES,
    TRAEFIK_SERVICES,
    image_and_replicas,
    platform_config,
    pods,
    rollout_for,
    set_restarts,
    wait_for,
    weights_of,
)


@pytest.fixture
def rollout(kube_cluster: KwokCluster, namespace: str) -> Rollout:
    """The rollout most tests drive: the platform and the Traefik router in the test's
    namespace (``rollout_for``'s defaults)."""
    return rollout_for(namespace, kube_cluster.kubeconfig)


def test_canary_deployment_service_and_traefik_weights_read_back(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    api = kube_cluster.api()
    status = rollout.deploy_canary("shop:2.0", 2)

    assert status.stable_image == "shop:1.0"
    assert status.canary_image == "shop:2.0"
    assert len(status.group("stable")) == 2
    assert len(status.group("canary")) == 2
    assert not status.not_ready("canary")
    assert not status.not_ready("stable")
    assert {r.restarts for r in status.replicas} == {0}
    pod_states = rollout.platform.pods()
    assert {(p.phase, p.ready) for p in pod_states} == {("Running", True)}
    assert {p.node for p in pod_states} <= {"node-000000", "node-000001"}
    assert all(p.ip for p in pod_states)
    canary = api.get(*_deployment(namespace, "shop-canary"))
    assert canary is not None
    assert canary["metadata"]["labels"]["version"] == "canary"
    assert canary["spec"]["template"]["metadata"]["labels"] == {"app": "shop", "version": "canary"}
    service = api.get(SERVICES, namespace, "shop-canary")
    assert service is not None
    assert service["spec"]["selector"] == {
        "app": "shop",
        "version": "canary",
    }
    assert weights_of(api, namespace) == {"shop": 100, "shop-canary": 0}

    weights = rollout.shift(10)
    assert (weights.stable, weights.canary) == (90, 10)
    assert weights_of(api, namespace) == {"shop": 90, "shop-canary": 10}
    assert (rollout.router.weights().stable, rollout.router.weights().canary) == (90, 10)


def _deployment(namespace: str, name: str) -> tuple[object, str, str]:
    from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS

    return DEPLOYMENTS, namespace, name


def test_custom_resources_take_json_merge_patches_not_strategic_merge(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    rollout.ensure_main()
    api = kube_cluster.api()
    with pytest.raises(KubeApiError) as rejected:
        api.request(
            "PATCH",
            TRAEFIK_SERVICES,
            namespace,
            "shop",
            body={"spec": {"weighted": {"services": []}}},
            content_type=STRATEGIC_MERGE_PATCH,
        )
    assert rejected.value.status == 415  # the real API server's answer for custom resources
    assert weights_of(api, namespace) == {"shop": 100}


def test_router_refuses_traffic_to_a_service_without_ready_endpoints(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    rollout.ensure_main()
    api = kube_cluster.api()
    # A canary Service whose selector matches no pod: zero endpoints.
    api.create(
        SERVICES,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "shop-canary"},
            "spec": {"selector": {"app": "shop", "version": "canary"}, "ports": [{"port": 80}]},
        },
    )
    rollout.router.set_members(stable=["shop"], canary=["shop-canary"], split=(100, 0))
    with pytest.raises(RouterError) as refused:
        rollout.shift(50)
    message = str(refused.value)
    assert "refusing to send 50% of the traffic to Service 'shop-canary'" in message
    assert "no ready endpoint" in message
    assert weights_of(api, namespace) == {"shop": 100, "shop-canary": 0}


def test_gateway_router_changes_one_rule_and_keeps_the_others(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    api = kube_cluster.api()
    other_rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
        "backendRefs": [{"name": "shop", "port": 80}],
    }
    api.create(
        HTTP_ROUTES,
        namespace,
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "shop"},
            "spec": {
                "parentRefs": [{"name": "public"}],
                "rules": [other_rule, {"backendRefs": [{"name": "shop", "port": 80}]}],
            },
        },
    )
    platform = platform_config(namespace, kube_cluster.kubeconfig)
    rollout = rollout_for(namespace, kube_cluster.kubeconfig, router="gateway")
    rollout.router = GatewayRouter(GatewayRouterConfig(type="gateway", rule=1), platform)
    rollout.deploy_canary("shop:2.0", 1)
    weights = rollout.shift(50)
    assert (weights.stable, weights.canary) == (50, 50)

    route = api.get(HTTP_ROUTES, namespace, "shop")
    assert route is not None
    assert route["spec"]["rules"][0] == other_rule
    assert {r["name"]: r["weight"] for r in route["spec"]["rules"][1]["backendRefs"]} == {
        "shop": 50,
        "shop-canary": 50,
    }
    assert route["spec"]["parentRefs"] == [{"name": "public"}]


def test_traefik_fallback_group_when_chosen(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    platform = platform_config(namespace, kube_cluster.kubeconfig)
    rollout.ensure_main()
    router = TraefikRouter(
        TraefikRouterConfig(type="traefik", api_version="traefik.containo.us/v1alpha1"), platform
    )
    router.start()
    assert router.kind().group == "traefik.containo.us"
    assert (router.weights().stable, router.weights().canary) == (100, 0)
    auto = TraefikRouter(TraefikRouterConfig(type="traefik"), platform)
    assert auto.kind().group == "traefik.io"


def test_traefik_auto_falls_back_to_the_v2_group_when_traefik_io_is_not_served(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    from pytest_release.canary.platforms.kubernetes.client import CRDS

    api = kube_cluster.api()
    crd = "traefikservices.traefik.io"

    def served(flag: bool) -> None:
        current = api.get(CRDS, None, crd)
        assert current is not None
        versions = [{**v, "served": flag} for v in current["spec"]["versions"]]
        api.merge_patch(CRDS, None, crd, {"spec": {"versions": versions}})
        wait_for(
            f"{crd} served={flag}",
            lambda: api.serves("traefik.io/v1alpha1", "traefikservices") is flag or None,
        )

    platform = platform_config(namespace, kube_cluster.kubeconfig)
    rollout_for(namespace, kube_cluster.kubeconfig).platform.deploy_stable("shop:1.0", 1)
    served(False)
    try:
        router = TraefikRouter(TraefikRouterConfig(type="traefik"), platform)
        router.start()
        assert router.kind().api_version == "traefik.containo.us/v1alpha1"
        stored = api.get(
            Kind("traefik.containo.us", "v1alpha1", "traefikservices", "TraefikService"),
            namespace,
            "shop",
        )
        assert stored is not None
        assert stored["spec"]["weighted"]["services"] == [
            {"name": "shop", "port": 80, "weight": 100}
        ]
        strict = TraefikRouter(
            TraefikRouterConfig(type="traefik", api_version="traefik.io/v1alpha1"), platform
        )
        with pytest.raises(RouterError, match="serves no TraefikService resource"):
            strict.start()
    finally:
        served(True)


def test_promote_then_restore_returns_to_the_previous_replicaset_revision(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    api = kube_cluster.api()
    rollout.deploy_canary("shop:2.0", 1)
    rollout.shift(50)
    weights = rollout.promote("shop:2.0", 3)
    assert (weights.stable, weights.canary, weights.canary_members) == (100, 0, ())
    assert image_and_replicas(api, namespace, "shop") == ("shop:2.0", 3)
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert api.get(SERVICES, namespace, "shop-canary") is None
    status = rollout.platform.status()
    assert status.previous_image == "shop:1.0"
    rollout.verify_main("shop:2.0", 3, 0)

    status = rollout.rollback("shop:2.0")
    assert status.stable_image == "shop:1.0"
    assert status.previous_image is None
    active = rollout.platform.active_replicaset()
    assert active is not None
    assert active["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:1.0"
    # The v1 ReplicaSet came back as a new revision (rollout undo), not a third ReplicaSet.
    replicasets = api.list(REPLICASETS, namespace, "app=shop,version=stable")
    assert len(replicasets) == 2
    assert active["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rollout.verify_main("shop:1.0", 3, 0)


def test_restart_counts_set_through_the_status_subresource_are_reported(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    api = kube_cluster.api()
    rollout.deploy_canary("shop:2.0", 1)
    [pod] = pods(api, namespace, "canary")
    set_restarts(api, namespace, pod, 4)
    status = rollout.platform.status()
    [canary] = status.group("canary")
    assert canary.restarts == 4
    assert {r.restarts for r in status.group("stable")} == {0}


def test_rollout_timeout_names_the_pods_that_are_not_ready(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    # A node selector no kwok node matches: the canary pod stays Pending.
    rollout = rollout_for(namespace, kube_cluster.kubeconfig, rollout_timeout=3)
    rollout.ensure_main()
    api = kube_cluster.api()
    api.merge_patch(
        *_deployment(namespace, "shop"),
        {"spec": {"template": {"spec": {"nodeSelector": {"disk": "none"}}}}},
    )
    with pytest.raises(PlatformError) as failed:
        rollout.platform.deploy_canary("shop:2.0", 1)
    message = str(failed.value)
    assert "Deployment 'shop-canary'" in message
    assert "did not roll out within 3s" in message
    assert "shop-canary-" in message
    assert "Pending, not ready, 0 restart(s), node (unscheduled)" in message


def test_rbac_denied_call_names_the_verb_and_the_resource(
    kube_cluster: KwokCluster, namespace: str, rollout: Rollout
) -> None:
    api = kube_cluster.api()
    rollout.deploy_canary("shop:2.0", 1)
    # The example Role without 'patch' on traefikservices.
    kube_cluster.kubectl(
        "apply", "-n", namespace, "-f", str(REPO / "deploy/kubernetes/example/rbac.yaml")
    )
    kube_cluster.kubectl(
        "patch",
        "role",
        "pytest-release",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "replace", "path": "/rules/5/verbs", "value": ["get", "create"]}]',
    )
    token = api.request(
        "POST",
        SERVICE_ACCOUNTS,
        namespace,
        "release",
        subresource="token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    limited = _token_kubeconfig(kube_cluster, token)
    restricted = rollout_for(namespace, limited)
    assert restricted.platform.status().canary_image == "shop:2.0"  # get/list are allowed
    with pytest.raises(RouterError) as denied:
        restricted.shift(10)
    message = str(denied.value)
    assert "forbidden" in message
    assert "may not patch traefikservices.traefik.io in namespace" in message
    assert f"system:serviceaccount:{namespace}:release" in message
    assert "Grant the 'patch' verb on 'traefikservices.traefik.io'" in message
    assert weights_of(api, namespace) == {"shop": 100, "shop-canary": 0}


def _token_kubeconfig(cluster: KwokCluster, token: str) -> Path:
    import yaml

    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    cluster_entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": "release", "user": {"token": token}}],
        "contexts": [
            {"name": "release", "context": {"cluster": cluster_entry["name"], "user": "release"}}
        ],
        "current-context": "release",
    }
    path = cluster.workdir / f"release-{token[-8:]}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_example_manifests_are_accepted_by_the_api_server(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    result = kube_cluster.kubectl(
        "apply", "-n", namespace, "-f", str(REPO / "deploy" / "kubernetes" / "example")
    )
    for kind in ("deployment.apps/shop", "service/shop", "traefikservice.traefik.io/shop"):
        assert f"{kind} created" in result.stdout
    assert "ingressroute.traefik.io/shop created" in result.stdout
    assert "httproute.gateway.networking.k8s.io/shop created" in result.stdout
    # The example is what the platform expects: a canary can be deployed beside it.
    rollout = rollout_for(namespace, kube_cluster.kubeconfig, stable_image=None)
    status = rollout.platform.deploy_canary("ghcr.io/acme/shop:1.1.0", 1)
    assert status.canary_image == "ghcr.io/acme/shop:1.1.0"


# -- ledger ------------------------------------------------------------------------------------
def _store(cluster: KwokCluster, namespace: str, **extra: object) -> KubernetesLedgerStore:
    # Validated as the [ledger] table is (a dataclass pydantic validates).
    config = TypeAdapter(LedgerConfig).validate_python(
        {
            "backend": "kubernetes",
            "namespace": namespace,
            "application": "shop",
            "kubeconfig": str(cluster.kubeconfig),
            **extra,
        }
    )
    return KubernetesLedgerStore.from_config(config, Path("/nonexistent"))


def test_configmap_ledger_loses_no_entry_under_concurrent_writers(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    writers, per_writer = 4, 8
    errors: list[BaseException] = []

    def write(n: int) -> None:
        ledger = Ledger(_store(kube_cluster, namespace))
        try:
            for k in range(per_writer):
                ledger.append(
                    LedgerEntry.start(
                        release_id=f"w{n}-{k}",
                        stage="uat",
                        image=None,
                        report=None,
                        override_requires=None,
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = Ledger(_store(kube_cluster, namespace)).entries()
    assert sorted(e.release_id for e in entries) == sorted(
        f"w{n}-{k}" for n in range(writers) for k in range(per_writer)
    )
    configmap = kube_cluster.api().get(*(_configmap_key(namespace, "pytest-release-ledger-shop")))
    assert configmap is not None
    assert "ledger.json" in configmap["data"]


def _configmap_key(namespace: str, name: str) -> tuple[object, str, str]:
    from pytest_release.canary.platforms.kubernetes.client import CONFIGMAPS

    return CONFIGMAPS, namespace, name


def test_configmap_that_is_not_a_ledger_is_left_untouched(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    api = kube_cluster.api()
    api.create(
        *(_configmap_key(namespace, "pytest-release-ledger-shop")[:2]),
        {"metadata": {"name": "pytest-release-ledger-shop"}, "data": {"other": "x"}},
    )
    with pytest.raises(LedgerError, match=r"has no 'ledger\.json' key"):
        Ledger(_store(kube_cluster, namespace)).entries()


def test_lease_lock_stops_a_second_rollout_and_expires_after_a_crash(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    first = _store(kube_cluster, namespace, lease_duration=5)
    second = _store(kube_cluster, namespace, lease_duration=5)
    with first.rollout_lock("stage canary-1 of release r1"):
        lease = kube_cluster.api().get(LEASES, namespace, "pytest-release-rollout-shop")
        assert lease is not None
        assert lease["spec"]["holderIdentity"].startswith("stage canary-1 of release r1")
        with pytest.raises(LedgerError) as held, second.rollout_lock("stage canary-2"):
            pass
        assert "another rollout holds the lock (stage canary-1 of release r1" in str(held.value)
        assert f"Lease {namespace}/pytest-release-rollout-shop" in str(held.value)
    lease = kube_cluster.api().get(LEASES, namespace, "pytest-release-rollout-shop")
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")
    with second.rollout_lock("stage canary-2"):
        pass

    # A holder that vanished without releasing: its lease expires after lease_duration.
    api = kube_cluster.api()
    lease = api.get(LEASES, namespace, "pytest-release-rollout-shop")
    assert lease is not None
    lease["spec"]["holderIdentity"] = "crashed run"
    lease["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"
    api.replace(LEASES, namespace, "pytest-release-rollout-shop", lease)
    with first.rollout_lock("stage canary-3"):
        taken = api.get(LEASES, namespace, "pytest-release-rollout-shop")
        assert taken is not None
        assert taken["spec"]["holderIdentity"].startswith("stage canary-3")


def test_crash_looping_canary_ends_the_rollout_wait_with_its_status_and_events(
    kube_cluster: KwokCluster, namespace: str
) -> None:
    """What the kubelet would write (kwok runs no container): the canary pod's container
    waits in CrashLoopBackOff after two OOM kills, and a BackOff warning event."""
    from pytest_release.canary.platforms.kubernetes.client import EVENTS, PODS

    rollout = rollout_for(namespace, kube_cluster.kubeconfig, rollout_timeout=600)
    rollout.ensure_main()
    api = kube_cluster.api()
    api.merge_patch(  # no kwok node matches: the canary pod stays Pending, unready
        *_deployment(namespace, "shop"),
        {"spec": {"template": {"spec": {"nodeSelector": {"disk": "none"}}}}},
    )
    failure: list[BaseException] = []

    def deploy() -> None:
        try:
            rollout.platform.deploy_canary("shop:2.0", 1)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=deploy, daemon=True)
    thread.start()
    pod = wait_for("the canary pod", lambda: (pods(api, namespace, "canary") or [None])[0])
    name = pod["metadata"]["name"]
    container = pod["spec"]["containers"][0]["name"]
    api.create(
        EVENTS,
        namespace,
        {
            "metadata": {"name": f"{name}.backoff"},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": name},
            "reason": "BackOff",
            "message": f"Back-off restarting failed container {container} in pod {name}",
            "type": "Warning",
            "count": 3,
            "source": {"component": "kubelet"},
        },
    )
    api.create(  # newer, but not the release's doing: listed after the BackOff
        EVENTS,
        namespace,
        {
            "metadata": {"name": f"{name}.dns"},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": name},
            "reason": "MissingClusterDNS",
            "message": "kubelet does not have ClusterDNS IP configured",
            "type": "Warning",
            "lastTimestamp": "2099-01-01T00:00:00Z",
            "source": {"component": "kubelet"},
        },
    )
    oom = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}
    api.merge_patch(
        PODS,
        namespace,
        name,
        {
            "status": {
                "containerStatuses": [
                    {
                        "name": container,
                        "image": "shop:2.0",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 2,
                        "state": waiting,
                        "lastState": oom,
                    }
                ]
            }
        },
        subresource="status",
    )
    thread.join(60)
    assert not thread.is_alive(), "the wait did not stop at the crash loop"
    [error] = failure
    assert isinstance(error, PlatformError)
    message = str(error)
    assert f"pod {name} is in CrashLoopBackOff after 2 restarts" in message
    assert "2 restart(s)" in message
    assert "waiting: CrashLoopBackOff: back-off 20s" in message
    assert "last terminated: OOMKilled (exit code 137)" in message
    assert f"BackOff (x3): Back-off restarting failed container {container} in pod" in message
    [canary] = rollout.platform.status().group("canary")
    assert canary.restarts == 2
    assert canary.events[:3] == (
        "waiting: CrashLoopBackOff: back-off 20s",
        "last terminated: OOMKilled (exit code 137)",
        f"BackOff (x3): Back-off restarting failed container {container} in pod {name}",
    )
    assert canary.events[3].startswith("MissingClusterDNS: kubelet does not have")

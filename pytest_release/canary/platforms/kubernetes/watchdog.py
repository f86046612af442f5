"""The dead man's switch on Kubernetes: a watchdog beside the service.

``python -m pytest_release k8s-watchdog run --namespace N --app A [--router traefik|gateway]``
polls the rollout stages' Leases (:mod:`~pytest_release.canary.platforms.kubernetes.stage_lease`)
of the application's ledger.  When one expired (its stage died without ending) it sets
100 % stable on the router (TraefikService or HTTPRoute weights), scales the canary
Deployment to 0 and marks the Lease ``pytest-release/switched``.  It leaves the Lease and
the ledger entry alone: the rollout is still *abandoned* until ``pytest --stage=rollback``
reconciles it (deletes the canary, records it), which the watchdog cannot judge.

``python -m pytest_release k8s-watchdog manifest ... --image IMAGE`` prints (as a JSON
``List``, for ``kubectl apply -f -``) the ServiceAccount, Role, RoleBinding and
Deployment that run it in the cluster (the image needs ``pytest-release[kubernetes]``).
The bound (docs/outcomes.md): an unjudged canary keeps traffic at most
``ledger.lease_ttl`` + ``--interval`` + one round of API requests after its stage died.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pytest_release.canary.platforms.kubernetes.client import (
    DEPLOYMENTS,
    LEASES,
    KubeApi,
    KubeApiError,
)
from pytest_release.canary.platforms.kubernetes.config import (
    ClusterAccess,
    KubernetesPlatformConfig,
)
from pytest_release.canary.platforms.kubernetes.ledger_store import KubernetesLedgerStore
from pytest_release.canary.platforms.kubernetes.stage_lease import ANNOTATION, name_in
from pytest_release.canary.routers.weighted_services import WeightedServiceRouter
from pytest_release.errors import PlatformError, RouterError
from pytest_release.ledger.lease import Lease

SWITCHED = ANNOTATION + "switched"


def switch_expired(
    store: KubernetesLedgerStore, router: WeightedServiceRouter, platform: KubernetesPlatformConfig
) -> list[Lease]:
    """Once per expired stage Lease: 100 % stable (the canary Service no backend; once
    the router applied it, or after its drain delay) the canary scaled to 0, the Lease
    marked switched.  The Leases switched now."""
    api = store.api
    switched = []
    for lease in store.abandoned():
        name = name_in(lease, store.namespace)
        if name is None:
            continue
        obj = api.get(LEASES, store.namespace, name) or {}
        if SWITCHED in ((obj.get("metadata") or {}).get("annotations") or {}):
            continue
        # The canary leaves the router before its pods go: Traefik refuses a whole
        # TraefikService naming a Service without serving endpoints (at weight 0 too).
        router.release_canary()
        router.drain()
        if api.get(DEPLOYMENTS, platform.namespace, platform.canary_name) is not None:
            api.merge_patch(
                DEPLOYMENTS, platform.namespace, platform.canary_name, {"spec": {"replicas": 0}}
            )
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        api.merge_patch(
            LEASES, store.namespace, name, {"metadata": {"annotations": {SWITCHED: at}}}
        )
        switched.append(lease)
    return switched


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_release k8s-watchdog")
    sub = parser.add_subparsers(dest="action", required=True)
    for action, text in (
        ("run", "watch the stage Leases and switch to 100%% stable when one expires"),
        ("manifest", "print the watchdog's ServiceAccount, Role, RoleBinding and Deployment"),
    ):
        command = sub.add_parser(action, help=text)
        command.add_argument("--namespace", required=True, help="namespace of the service")
        command.add_argument("--app", required=True, help="the platform's app (platform.app)")
        command.add_argument("--router", choices=("traefik", "gateway"), default="traefik")
        command.add_argument(
            "--application", default=None, help="ledger.application (default: --app)"
        )
        command.add_argument(
            "--ledger-namespace", default=None, help="ledger.namespace (default: --namespace)"
        )
        command.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
        command.add_argument(
            "--traefik-api",
            default=None,
            help="Traefik's API URL: the canary is scaled to 0 once Traefik applied the "
            "switch (else after --drain-delay)",
        )
        command.add_argument(
            "--drain-delay", type=float, default=2.0, help="router.drain_delay (seconds)"
        )
        if action == "run":
            command.add_argument("--kubeconfig", default=None)
            command.add_argument("--once", action="store_true", help="one poll, then exit")
        else:
            command.add_argument("--image", required=True, help="an image with pytest-release")
    return parser


def _parts(
    args: argparse.Namespace,
) -> tuple[KubernetesLedgerStore, WeightedServiceRouter, KubernetesPlatformConfig]:
    access: dict[str, Any] = {"kubeconfig": args.kubeconfig} if args.kubeconfig else {}
    platform = KubernetesPlatformConfig.model_validate(
        {"type": "kubernetes", "namespace": args.namespace, "app": args.app, **access}
    )
    api = KubeApi(ClusterAccess(**access))
    application = args.application or args.app
    store = KubernetesLedgerStore(
        namespace=args.ledger_namespace or args.namespace,
        configmap=f"pytest-release-ledger-{application}",
        lease=f"pytest-release-rollout-{application}",
        access=ClusterAccess(**access),
        api=api,
    )
    router: WeightedServiceRouter
    if args.router == "traefik":
        from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
        from pytest_release.canary.routers.traefik.router import TraefikRouter

        traefik = TraefikRouterConfig(
            type="traefik", api_url=args.traefik_api, drain_delay=args.drain_delay
        )
        router = TraefikRouter(traefik, platform, api=api)
    else:
        from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
        from pytest_release.canary.routers.gateway.router import GatewayRouter

        gateway = GatewayRouterConfig(type="gateway", drain_delay=args.drain_delay)
        router = GatewayRouter(gateway, platform, api=api)
    return store, router, platform


def run(args: argparse.Namespace) -> int:
    try:
        store, router, platform = _parts(args)
    except (KubeApiError, ValueError) as exc:  # no cluster access; pydantic's errors
        print(f"k8s-watchdog: cannot start: {exc}", file=sys.stderr)
        return 2
    while True:
        try:
            for lease in switch_expired(store, router, platform):
                print(f"switched to 100% stable: the stage died: {lease.describe()}", flush=True)
        except (KubeApiError, PlatformError, RouterError) as exc:
            print(f"watchdog: {exc}", file=sys.stderr, flush=True)  # retried next poll
        if args.once:
            return 0
        time.sleep(args.interval)


def manifest(args: argparse.Namespace) -> str:
    name = f"pytest-release-watchdog-{args.app}"
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "pytest-release"}
    meta = {"name": name, "namespace": args.namespace, "labels": labels}
    routes = (
        {"apiGroups": ["traefik.io", "traefik.containo.us"], "resources": ["traefikservices"]}
        if args.router == "traefik"
        else {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"]}
    )
    command = [
        "python", "-m", "pytest_release", "k8s-watchdog", "run",
        f"--namespace={args.namespace}", f"--app={args.app}", f"--router={args.router}",
        f"--interval={args.interval:g}",
    ]  # fmt: skip
    if args.traefik_api:
        command.append(f"--traefik-api={args.traefik_api}")
    if args.drain_delay != 2.0:
        command.append(f"--drain-delay={args.drain_delay:g}")
    if args.application:
        command.append(f"--application={args.application}")
    if args.ledger_namespace:
        command.append(f"--ledger-namespace={args.ledger_namespace}")
    # One namespace: the ledger's Leases must live in the service's (a Role is namespaced).
    # Exactly what switch_expired does (tests/kubernetes/test_watchdog.py checks it with
    # SubjectAccessReviews); the API group discovery it reads is open to every identity.
    rules = [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["get", "list", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
        {**routes, "verbs": ["get", "patch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
    ]  # fmt: skip
    documents = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": args.namespace}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": name,
                                        "containers": [{"name": "watchdog", "image": args.image,
                                                        "command": command}]}}}},
    ]  # fmt: skip
    # JSON (a YAML subset): ``kubectl apply -f`` reads it, and it needs no YAML library.
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}, indent=2) + "\n"


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.action == "manifest":
        print(manifest(args), end="")
        return 0
    return run(args)

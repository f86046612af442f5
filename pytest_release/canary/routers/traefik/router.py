"""Traefik ``TraefikService`` weights (``router.type = "traefik"``).

The weighted TraefikService lists the main and canary Services under
``spec.weighted.services``; an IngressRoute routes to it (see
``deploy/kubernetes/example``).  The API group is ``traefik.io/v1alpha1`` (Traefik v3),
with ``traefik.containo.us/v1alpha1`` (Traefik v2) as the fallback when the cluster does
not serve the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_release.canary.platforms.kubernetes.client import JSON, Kind
from pytest_release.canary.routers.traefik.config import TraefikRouterConfig
from pytest_release.canary.routers.traefik.entry import CAPABILITIES
from pytest_release.canary.routers.weighted_services import WeightedServiceRouter
from pytest_release.errors import RouterError

GROUPS = ("traefik.io/v1alpha1", "traefik.containo.us/v1alpha1")
PLURAL = "traefikservices"


class TraefikRouter(WeightedServiceRouter):
    object_kind = "TraefikService"
    capabilities = CAPABILITIES
    config: TraefikRouterConfig

    _kind: Kind | None = None

    def kind(self) -> Kind:
        if self._kind is None:
            candidates = GROUPS if self.config.api_version == "auto" else (self.config.api_version,)
            for group_version in candidates:
                if self.api.serves(group_version, PLURAL):
                    group, _, version = group_version.partition("/")
                    self._kind = Kind(group, version, PLURAL, "TraefikService")
                    break
            else:
                raise RouterError(
                    f"the API server at {self.api.server} serves no TraefikService resource "
                    f"(looked for {PLURAL} in {', '.join(candidates)}): install Traefik's "
                    "CustomResourceDefinitions (deploy/kubernetes/crds/traefik.yaml)"
                )
        return self._kind

    def new_object(self) -> JSON:
        kind = self.kind()
        return {
            "apiVersion": kind.api_version,
            "kind": "TraefikService",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "pytest-release"},
            },
            "spec": {
                "weighted": {
                    "services": [{"name": self.stable_service, "port": self.port, "weight": 100}]
                }
            },
        }

    def read_backends(self, obj: Mapping[str, Any]) -> list[JSON]:
        weighted = (obj.get("spec") or {}).get("weighted")
        if not isinstance(weighted, Mapping):
            raise RouterError(
                f"{self.describe} is not a weighted TraefikService (no spec.weighted); "
                "this router changes spec.weighted.services"
            )
        return [dict(s) for s in weighted.get("services") or [] if isinstance(s, Mapping)]

    def backends_patch(self, obj: Mapping[str, Any], backends: list[JSON]) -> JSON:
        return {"spec": {"weighted": {"services": backends}}}

    def wait_applied(self) -> bool:
        """With ``router.api_url``: wait until Traefik applies the stored TraefikService
        (its API), within ``platform.rollout_timeout``; without: False (not observable)."""
        if not self.config.api_url:
            return False
        from pytest_release.canary.routers.traefik import applied

        stored = self._call(self._ensure)
        expected = {
            applied.backend_id(self.namespace, b.service, self.port): b.weight
            for b in self._backends(stored)
        }
        service = applied.service_id(self.namespace, self.name)
        applied.wait_applied(self.config.api_url, service, expected, self.platform.rollout_timeout)
        return True

"""Gateway API ``HTTPRoute`` weights (``router.type = "gateway"``).

One rule of the HTTPRoute (``router.rule``, default the first) lists the main and canary
Services as ``backendRefs`` with weights.  A JSON merge patch replaces lists whole, so
every rule is sent back unchanged except the ``backendRefs`` of that one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pytest_release.canary.platforms.kubernetes.client import JSON, Kind
from pytest_release.canary.routers.gateway.config import GatewayRouterConfig
from pytest_release.canary.routers.gateway.entry import CAPABILITIES
from pytest_release.canary.routers.weighted_services import WeightedServiceRouter
from pytest_release.errors import RouterError

PLURAL = "httproutes"


class GatewayRouter(WeightedServiceRouter):
    object_kind = "HTTPRoute"
    capabilities = CAPABILITIES
    config: GatewayRouterConfig

    def kind(self) -> Kind:
        group, _, version = self.config.api_version.partition("/")
        return Kind(group, version, PLURAL, "HTTPRoute")

    def new_object(self) -> JSON:
        spec: JSON = {
            "rules": [
                {"backendRefs": [{"name": self.stable_service, "port": self.port, "weight": 100}]}
            ]
        }
        if self.config.parent_gateway:
            spec["parentRefs"] = [{"name": self.config.parent_gateway}]
        if self.config.rule != 0:
            raise RouterError(
                f"{self.describe} does not exist and router.rule = {self.config.rule}: a route "
                "created here has one rule; create the HTTPRoute yourself or use rule = 0"
            )
        return {
            "apiVersion": self.config.api_version,
            "kind": "HTTPRoute",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "pytest-release"},
            },
            "spec": spec,
        }

    def _rules(self, obj: Mapping[str, Any]) -> list[Any]:
        rules = (obj.get("spec") or {}).get("rules") or []
        if self.config.rule >= len(rules):
            raise RouterError(
                f"{self.describe} has {len(rules)} rule(s); router.rule = {self.config.rule} "
                "does not exist (rules are counted from 0)"
            )
        return list(rules)

    def read_backends(self, obj: Mapping[str, Any]) -> list[JSON]:
        rule = self._rules(obj)[self.config.rule]
        refs = rule.get("backendRefs") or [] if isinstance(rule, Mapping) else []
        for ref in refs:
            if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
                raise RouterError(
                    f"{self.describe} rule {self.config.rule} has a backendRef to "
                    f"{ref.get('group')}/{ref.get('kind')} '{ref.get('name')}': this router "
                    "weights Services only"
                )
        return [dict(r) for r in refs if isinstance(r, Mapping)]

    def backends_patch(self, obj: Mapping[str, Any], backends: list[JSON]) -> JSON:
        rules = copy.deepcopy(self._rules(obj))
        rules[self.config.rule] = {**rules[self.config.rule], "backendRefs": backends}
        return {"spec": {"rules": rules}}

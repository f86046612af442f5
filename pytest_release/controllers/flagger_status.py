"""What Flagger says of one ``Canary`` in its status: the canary's traffic weight now.

Flagger's webhook payload does not carry the weight, and every ``rollout`` webhook is called
at every step: the webhook reads ``status.canaryWeight`` to know which stage (the one
configured with that weight) the call is about. Reading only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_release.errors import PlatformError

if TYPE_CHECKING:
    from pytest_release.canary.platforms.kubernetes.client import KubeApi


@dataclass(frozen=True)
class CanaryState:
    namespace: str
    name: str
    phase: str
    canary_weight: int


def read_canary(api: KubeApi, namespace: str, name: str) -> CanaryState:
    from pytest_release.canary.platforms.kubernetes.client import Kind

    canaries = Kind("flagger.app", "v1beta1", "canaries", "Canary")
    found = api.get(canaries, namespace, name)
    if found is None:
        raise PlatformError(
            f"Canary {namespace}/{name} does not exist (the webhook's payload names it): "
            "is the webhook server pointed at the cluster Flagger runs in (--kubeconfig)?"
        )
    status = found.get("status") or {}
    weight = status.get("canaryWeight", 0)
    if not isinstance(weight, int):
        raise PlatformError(f"Canary {namespace}/{name}: status.canaryWeight is {weight!r}")
    return CanaryState(namespace, name, str(status.get("phase", "")), weight)

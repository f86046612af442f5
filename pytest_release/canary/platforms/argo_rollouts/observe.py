"""What Argo Rollouts is doing with one ``Rollout``, read from the API server: the canary
and stable pod-template hashes, the current step, the weights the controller set (its own
status and the ``TraefikService`` it manages, which must agree), and whether it promoted,
aborted or paused. Reading only: nothing here writes to the cluster."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pytest_release.canary.platforms.kubernetes.client import Kind, KubeApi
from pytest_release.canary.router import Weights
from pytest_release.errors import PlatformError

ROLLOUTS = Kind("argoproj.io", "v1alpha1", "rollouts", "Rollout")
TRAEFIK_SERVICES = Kind("traefik.io", "v1alpha1", "traefikservices", "TraefikService")
ControllerAction = Literal["promoted", "aborted", "paused", "progressing", "degraded"]


@dataclass(frozen=True)
class ObservedRollout:
    """One reading of a Rollout and its TraefikService."""

    namespace: str
    name: str
    phase: str  # Healthy, Progressing, Paused, Degraded (the controller's)
    message: str
    aborted: bool
    stable_hash: str | None
    canary_hash: str | None  # the pod template under rollout; None when it is the stable one
    step_index: int | None
    step_count: int
    status_weights: tuple[int, int] | None  # (stable, canary) as the controller records them
    router_weights: Weights | None  # read from the TraefikService

    @property
    def action(self) -> ControllerAction:
        if self.aborted:
            return "aborted"
        if self.phase == "Degraded":
            return "degraded"
        if self.phase == "Paused":
            return "paused"
        if self.canary_hash is None and self.phase == "Healthy":
            return "promoted"
        return "progressing"

    def describe(self) -> str:
        weights = f"; router {self.router_weights}" if self.router_weights else ""
        step = f"step {self.step_index}/{self.step_count}" if self.step_index is not None else ""
        return (
            f"Rollout {self.namespace}/{self.name}: {self.action} ({self.phase}, {step}; "
            f"stable {self.stable_hash}, canary {self.canary_hash}{weights})"
            + (f": {self.message}" if self.message else "")
        )

    def to_record(self) -> dict[str, Any]:
        """For the ledger: what the controller did, read back from its status."""
        return {
            "controller": "argo-rollouts",
            "rollout": f"{self.namespace}/{self.name}",
            "action": self.action,
            "phase": self.phase,
            "message": self.message,
            "stable": self.stable_hash,
            "canary": self.canary_hash,
            "step": self.step_index,
            "steps": self.step_count,
            "weights": None
            if self.router_weights is None
            else {"stable": self.router_weights.stable, "canary": self.router_weights.canary},
        }


def _status_weights(status: Mapping[str, Any]) -> tuple[int, int] | None:
    weights = (status.get("canary") or {}).get("weights")
    if not isinstance(weights, Mapping):
        return None
    canary = int((weights.get("canary") or {}).get("weight") or 0)
    stable = int((weights.get("stable") or {}).get("weight") or 0)
    return stable, canary


class RolloutObserver:
    """Reads one Rollout (and the TraefikService its traffic routing names)."""

    def __init__(self, api: KubeApi, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name

    def _rollout(self) -> dict[str, Any]:
        rollout = self.api.get(ROLLOUTS, self.namespace, self.name)
        if rollout is None:
            raise PlatformError(
                f"no Rollout {self.namespace}/{self.name} on {self.api.server}: create it "
                "(python -m pytest_release argo-rollouts writes one) or set the platform's "
                "rollout name"
            )
        return rollout

    def _router_weights(self, spec: Mapping[str, Any]) -> Weights | None:
        canary = (spec.get("strategy") or {}).get("canary") or {}
        traefik = (canary.get("trafficRouting") or {}).get("traefik") or {}
        name = traefik.get("weightedTraefikServiceName")
        if not name:
            return None
        obj = self.api.get(TRAEFIK_SERVICES, self.namespace, str(name))
        if obj is None:
            raise PlatformError(
                f"the Rollout {self.namespace}/{self.name} routes through TraefikService "
                f"{name!r}, which does not exist: create it (weighted: the stable and canary "
                "Services)"
            )
        backends = ((obj.get("spec") or {}).get("weighted") or {}).get("services") or []
        by_name = {str(b.get("name")): int(b.get("weight") or 0) for b in backends}
        stable = by_name.get(str(canary.get("stableService")), 0)
        canary_weight = by_name.get(str(canary.get("canaryService")), 0)
        total = stable + canary_weight
        if total <= 0:
            raise PlatformError(f"TraefikService {self.namespace}/{name} sends no traffic")
        stable_pct = round(100 * stable / total)
        return Weights(stable=stable_pct, canary=100 - stable_pct)

    def observe(self) -> ObservedRollout:
        rollout = self._rollout()
        spec = rollout.get("spec") or {}
        status = rollout.get("status") or {}
        stable = status.get("stableRS")
        current = status.get("currentPodHash")
        steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
        index = status.get("currentStepIndex")
        return ObservedRollout(
            namespace=self.namespace,
            name=self.name,
            phase=str(status.get("phase") or ""),
            message=str(status.get("message") or ""),
            aborted=bool(status.get("abort")),
            stable_hash=str(stable) if stable else None,
            canary_hash=str(current) if current and current != stable else None,
            step_index=int(index) if index is not None else None,
            step_count=len(steps),
            status_weights=_status_weights(status),
            router_weights=self._router_weights(spec),
        )

    def wait_for(
        self,
        what: str,
        done: Callable[[ObservedRollout], bool],
        timeout: float,
        poll: float = 0.5,
    ) -> ObservedRollout:
        """The first reading that ``done`` accepts; PlatformError naming the last reading
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.observe()
            if done(seen):
                return seen
            if time.monotonic() > deadline:
                raise PlatformError(f"waited {timeout:g} s for {what}; last: {seen.describe()}")
            time.sleep(poll)

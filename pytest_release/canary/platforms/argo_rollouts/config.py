"""``[tool.pytest-release.gates.canary.platform]`` with ``type = "argo-rollouts"``: a stage
that observes a rollout the Argo Rollouts controller drives (pydantic only, light import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pytest_release.canary.platforms.kubernetes.config import (
    ClusterAccess,
    check_label,
    check_subdomain,
    pods_unreachable,
)
from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.types import HttpPath, PositiveDuration


class ArgoRolloutsPlatformConfig(ClusterAccess):
    """``platform`` with ``type = "argo-rollouts"``: the controller deploys, sets the
    weights, promotes and aborts; the stage reads which pods are canary and stable and the
    weight the controller set, and judges."""

    type: Literal["argo-rollouts"]
    """Observe a Rollout that Argo Rollouts drives (it deploys, sets weights, promotes and rolls
    back; the stage judges). docs/argo-rollouts.md"""
    namespace: str = "default"
    """Namespace of the Rollout."""
    rollout: str
    """Name of the Rollout."""
    container: str | None = None
    """Container whose image is reported; unset: the pod's first container."""
    container_port: int = Field(default=8080, ge=1, le=65535)
    """Container port the sampler reaches the pods on (with sample_pods)."""
    health_path: HttpPath = "/health"
    """Path the hold probes on every pod (with sample_pods)."""
    sample_pods: bool = False
    """Pod IPs (container_port) and router.url are reachable from the process that runs the stage
    (an analysis Job in the cluster): the hold sends requests through router.url and to every
    pod. false: pod status only (restarts, readiness), with judge.http_checks = false, or
    Prometheus evidence."""
    observe_timeout: PositiveDuration = 120.0
    """How long the stage waits for the controller to reach the stage's weight with ready canary
    pods before it fails (the stage was run at the wrong step)."""
    request_timeout: PositiveDuration = 15.0
    """Timeout of one request to the API server."""

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_label(value, "namespace")

    @field_validator("rollout")
    @classmethod
    def _rollout(cls, value: str) -> str:
        return check_subdomain(value, "rollout")

    def unreachable_replicas(self) -> str | None:
        """Why the canary gate's HTTP checks cannot reach the pods (None: they can)."""
        return pods_unreachable(self.sample_pods)

    def deployment_claims(self) -> tuple[DeploymentClaim, ...]:
        """The Rollout by name: in one namespace of one cluster it belongs to one
        environment."""
        return (
            DeploymentClaim(
                "Argo Rollouts Rollout",
                (
                    *self.cluster,
                    ("platform.namespace", self.namespace),
                    ("platform.rollout", self.rollout),
                ),
                "its own platform.namespace or platform.rollout",
            ),
        )

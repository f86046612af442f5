"""Configuration of the Kubernetes platform and its routers (pydantic only, light import).

``[tool.pytest-release.gates.canary.platform]`` with ``type = "kubernetes"`` and
``[tool.pytest-release.gates.canary.router]`` with ``type = "traefik"`` or
``type = "gateway"``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.types import Duration, HttpPath, PositiveDuration

# RFC 1123 label (namespaces, Services) and subdomain (Deployments, custom resources).
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_name(
    value: str, what: str, pattern: re.Pattern[str], longest: int, kind: str, characters: str
) -> str:
    """``value`` matches ``pattern`` in at most ``longest`` characters, or the error calls
    it a ``what`` that is not a valid Kubernetes ``kind`` and says what it may hold."""
    if len(value) > longest or not pattern.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid Kubernetes {kind}: use {characters}, "
            "starting and ending with a letter or digit"
        )
    return value


def check_label(value: str, what: str = "name") -> str:
    return _check_name(
        value, what, _LABEL, 63, "name", "at most 63 lower-case letters, digits and '-'"
    )


def check_subdomain(value: str, what: str = "name") -> str:
    return _check_name(
        value, what, _SUBDOMAIN, 253, "object name", "lower-case letters, digits, '-' and '.'"
    )


class ClusterAccess(BaseModel):
    """How to reach the API server: a kubeconfig file and context, or (both unset and no
    ``$KUBECONFIG`` / ``~/.kube/config``) the in-cluster service account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kubeconfig: str | None = None
    """Kubeconfig file (relative to the rootdir); unset: $KUBECONFIG, ~/.kube/config, or the
    in-cluster service account."""
    context: str | None = None
    """Kubeconfig context; unset: the current context."""

    @property
    def cluster(self) -> tuple[tuple[str, object], ...]:
        """The cluster as the configuration names it (unset: the default one)."""
        return (("platform.kubeconfig", self.kubeconfig), ("platform.context", self.context))


class KubernetesPlatformConfig(ClusterAccess):
    """``[tool.pytest-release.gates.canary.platform]`` with ``type = "kubernetes"``: the
    main Deployment and a canary Deployment labelled ``version=canary`` beside it."""

    type: Literal["kubernetes"]
    """Run the service on a Kubernetes cluster."""
    namespace: str = "default"
    """Namespace of the service."""
    app: str
    """Value of the 'app' label of the service's pods."""
    deployment: str | None = None
    """Name of the main (stable) Deployment; unset: the app name."""
    container: str | None = None
    """Container whose image is released; unset: the pod's first container."""
    port: int = Field(default=80, ge=1, le=65535)
    """Port of the Services."""
    container_port: int = Field(default=8080, ge=1, le=65535)
    """Container port of Deployments and Services the platform creates."""
    stable_image: str | None = None
    """Image of the main Deployment when none exists yet (first release)."""
    stable_replicas: int = Field(default=1, ge=1, le=100)
    """Replicas of a main Deployment created here."""
    health_path: HttpPath = "/health"
    """Readiness and liveness probe path of the Deployments the platform creates, and the path the
    hold probes on every pod (with sample_pods)."""
    termination_grace_period: int = Field(default=10, ge=0, le=3600)
    """terminationGracePeriodSeconds of the Deployments the platform creates, plus their preStop
    sleep of router.drain_delay."""
    sample_pods: bool = False
    """Pod IPs (container_port) and router.url are reachable from the process that runs the stages
    (it runs inside the cluster's network, e.g. as a Job): the hold sends requests through
    router.url and to every pod, probes health_path on every pod, and the promotion's check sends
    its requests through router.url, so judge.http_checks can be on. false: pod status only
    (restarts, readiness)."""
    rollout_timeout: PositiveDuration = 300.0
    """How long a Deployment may take to roll out (observedGeneration, updated and available
    replicas) before the step fails."""
    request_timeout: PositiveDuration = 15.0
    """Timeout of one request to the API server."""

    @field_validator("namespace", "app")
    @classmethod
    def _label(cls, value: str) -> str:
        return check_label(value)

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: str | None) -> str | None:
        return None if value is None else check_subdomain(value)

    @property
    def main_name(self) -> str:
        return self.deployment or self.app

    @property
    def canary_name(self) -> str:
        return f"{self.main_name}-canary"

    def deployment_claims(self) -> tuple[DeploymentClaim, ...]:
        """The Deployments and Services by name (main and canary), and the pods of the
        ``app`` label, which the Services select: in one namespace of one cluster, each
        belongs to one environment."""
        where = (*self.cluster, ("platform.namespace", self.namespace))
        fix = "its own platform.namespace (e.g. namespace = '{environment}') or cluster"
        return (
            DeploymentClaim(
                "Deployment and Service", (*where, ("platform.deployment", self.main_name)), fix
            ),
            DeploymentClaim(
                "Deployment and Service",
                (*where, ("canary Deployment (platform.deployment + '-canary')", self.canary_name)),
                fix,
            ),
            DeploymentClaim(
                "pods selected by app label", (*where, ("platform.app", self.app)), fix
            ),
        )

    def unreachable_replicas(self) -> str | None:
        """Why the canary gate's HTTP checks cannot reach the pods (None: they can); the
        gate asks every platform table that has this method."""
        return pods_unreachable(self.sample_pods)


def pods_unreachable(sample_pods: bool) -> str | None:
    """Why HTTP checks cannot reach the pods of a cluster platform without ``sample_pods``
    (None: they can)."""
    if sample_pods:
        return None
    return (
        "judge.http_checks = true on Kubernetes needs platform.sample_pods = true (pod IPs "
        "and router.url reachable from the process that runs the stages); otherwise no "
        "request reaches a pod and every interval is insufficient: set "
        "judge.http_checks = false to judge on pod status (judge.max_restarts)"
    )


class ServiceRouterConfig(BaseModel):
    """What a router of Kubernetes Services (Traefik, Gateway API) shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    """Name of the routing object; unset: the main Deployment's name."""
    namespace: str | None = None
    """Namespace of the routing object; unset: the platform's."""
    url: str | None = None
    """Where clients reach the service through this router (reported only)."""
    create: bool = True
    """Create the routing object (all traffic to the main Service) when it does not exist; false: a
    missing object is an error."""
    drain_delay: Duration = 2.0
    """How long the canary Service stays up after it left the routing object (the router applies
    changes asynchronously: Traefik up to its providersThrottleDuration, 2 s by default, later; a
    Traefik router with api_url waits until Traefik reports the change instead), so no request is
    sent to a deleted pod; also the preStop sleep (whole seconds) of the Deployments the platform
    creates, so a terminating pod serves on while the router drops it; 0: delete at once, no
    preStop hook."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_subdomain(value)

    def deployment_claims(self, platform: object) -> tuple[DeploymentClaim, ...]:
        """The routing object (by kind, namespace and name) in the platform's cluster."""
        if not isinstance(platform, KubernetesPlatformConfig):
            return ()  # a router that does not fit the platform is refused elsewhere
        kind = getattr(self, "type", "router")
        return (
            DeploymentClaim(
                f"{kind} routing object",
                (
                    *platform.cluster,
                    ("router.namespace", self.namespace or platform.namespace),
                    ("router.name", self.name or platform.main_name),
                ),
                "its own router.name or router.namespace (or a platform in its own namespace)",
            ),
        )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else check_label(value, "namespace")

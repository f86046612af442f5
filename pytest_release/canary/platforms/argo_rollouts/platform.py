"""The pods of a Rollout that Argo Rollouts drives, read as a
:class:`~pytest_release.canary.platform.Platform`: stable and canary are told apart by the
``rollouts-pod-template-hash`` label against the Rollout's ``status.stableRS`` and
``status.currentPodHash``.  Reading only: every write operation of the protocol raises
:class:`~pytest_release.errors.PlatformError` (the controller deploys, promotes and rolls
back)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NoReturn

from pytest_release.canary.platform import (
    Group,
    PlatformCapabilities,
    PlatformStatus,
    PlatformTerms,
)
from pytest_release.canary.platforms.argo_rollouts.config import ArgoRolloutsPlatformConfig
from pytest_release.canary.platforms.argo_rollouts.observe import ROLLOUTS
from pytest_release.canary.platforms.kubernetes.client import PODS, KubeApi
from pytest_release.canary.platforms.kubernetes.pods import (
    PodStatus,
    pod_status,
    warning_events,
    with_events,
)
from pytest_release.errors import PlatformError

HASH_LABEL = "rollouts-pod-template-hash"


def controller_owns(what: str, where: str) -> NoReturn:
    """The error of every write an observing stage is asked for."""
    raise PlatformError(
        f"{what} is the Argo Rollouts controller's, not pytest-release's ({where} is "
        "observed): promote or abort with `kubectl argo rollouts promote|abort`, or let the "
        "analysis decide"
    )


class ObservedRolloutPlatform:
    """The stable and canary pods of one Rollout."""

    terms = PlatformTerms(main="stable ReplicaSet", unit="pod", listing="pods")

    def __init__(self, config: ArgoRolloutsPlatformConfig, api: KubeApi) -> None:
        self.config = config
        self.api = api
        self.namespace = config.namespace
        self.name = f"Argo Rollouts Rollout {config.namespace}/{config.rollout}"

    @property
    def capabilities(self) -> PlatformCapabilities:
        """The controller creates and promotes; pod IPs are reached only with
        ``platform.sample_pods`` (the stage runs in the cluster's network, as an analysis
        Job)."""
        return PlatformCapabilities(
            creates_main=False, sampler_reach="replicas" if self.config.sample_pods else "nothing"
        )

    def rollout_object(self) -> dict[str, Any]:
        found = self.api.get(ROLLOUTS, self.namespace, self.config.rollout)
        if found is None:
            raise PlatformError(
                f"no Rollout {self.namespace}/{self.config.rollout} on {self.api.server}: "
                "create it (python -m pytest_release argo-rollouts writes one) or set "
                "platform.rollout to its name"
            )
        return found

    def status(self) -> PlatformStatus:
        now = time.time()
        rollout = self.rollout_object()
        status = rollout.get("status") or {}
        stable = str(status.get("stableRS") or "")
        current = str(status.get("currentPodHash") or "")
        groups: dict[str, Group] = {}
        if stable:
            groups[stable] = "stable"
        if current and current != stable:
            groups[current] = "canary"
        pods = self._pods(rollout, groups)
        replicas = tuple(pod.replica(now, self.config.container_port) for pod in pods)
        images = {pod.version: pod.image for pod in pods}
        return PlatformStatus(
            timestamp=now,
            replicas=replicas,
            stable_image=images.get("stable"),
            canary_image=images.get("canary"),
            previous_image=None,  # the controller keeps the revisions, not pytest-release
        )

    def _pods(self, rollout: Mapping[str, Any], groups: Mapping[str, Group]) -> list[PodStatus]:
        labels = (((rollout.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        found = []
        for pod in sorted(
            self.api.list(PODS, self.namespace, selector or None),
            key=lambda p: str(p["metadata"]["name"]),
        ):
            meta = pod.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue  # terminating: leaving its group
            group = groups.get(str((meta.get("labels") or {}).get(HASH_LABEL) or ""))
            if group is not None:
                found.append(pod_status(pod, group, self.config.container))
        events = warning_events(self.api, self.namespace, (p.name for p in found))
        return with_events(found, events)

    def deploy_stable(self, image: str, replicas: int) -> PlatformStatus:
        controller_owns("starting the stable version", self.name)

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        controller_owns("deploying the canary", self.name)

    def promote(self, *, record_previous: bool = True) -> PlatformStatus:
        controller_owns("promoting the canary", self.name)

    def rollback(self) -> PlatformStatus:
        controller_owns("rolling back", self.name)

    def cleanup(self) -> None:
        """Nothing to end: the stage started nothing on the cluster."""

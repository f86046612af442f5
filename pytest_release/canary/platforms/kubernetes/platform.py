"""The Kubernetes platform: the main Deployment and a canary Deployment beside it.

* main: the Deployment ``platform.deployment`` (default: the app name), pods labelled
  ``app=<app>, version=stable``, behind the Service of the same name;
* canary: the Deployment ``<main>-canary``, a copy of the main pod template with the
  release image and ``version=canary``, behind the Service ``<main>-canary``.

Every change waits for the Deployment to roll out (``observedGeneration``, updated,
ready and available replicas, no old replica left) within ``rollout_timeout``; a timeout
names the pods that are not ready.  The image the main Deployment ran before a promotion
is kept in its annotation ``pytest-release.io/previous-image``; a rollback returns the
main Deployment to the ReplicaSet revision of that image (what ``kubectl rollout undo``
does) and verifies the ReplicaSet that serves afterwards.

Over 500 lines on purpose: every Deployment/Pod/ReplicaSet read and write of the platform
shares one set of label and annotation conventions, kept in one place.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_release.canary.platform import (
    Group,
    PlatformCapabilities,
    PlatformStatus,
    PlatformTerms,
)
from pytest_release.canary.platforms.kubernetes.client import (
    DEPLOYMENTS,
    JSON,
    PODS,
    REPLICASETS,
    SERVICES,
    KubeApi,
    LazyApi,
    conditions,
    raising_as,
)
from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
from pytest_release.canary.platforms.kubernetes.pods import (
    PodStatus,
    pod_status,
    warning_events,
    with_events,
)
from pytest_release.errors import PlatformError

PREVIOUS_IMAGE = "pytest-release.io/previous-image"
REVISION = "deployment.kubernetes.io/revision"
MANAGED_BY = {"app.kubernetes.io/managed-by": "pytest-release"}
POLL = 0.25


class KubernetesPlatform:
    """:class:`~pytest_release.canary.platform.Platform` on a Kubernetes namespace."""

    terms = PlatformTerms(main="main Deployment", unit="pod", listing="pods")

    def __init__(
        self,
        config: KubernetesPlatformConfig,
        rootdir: Path | None = None,
        api: KubeApi | None = None,
        *,
        drain_delay: float = 0.0,
    ) -> None:
        self.config = config
        # Pods of the Deployments created here keep serving this long after their
        # deletion began (preStop sleep), while the router drops their endpoints.
        self.drain_seconds = math.ceil(drain_delay)
        self.rootdir = rootdir
        self._api = LazyApi(
            lambda: KubeApi(config, rootdir, config.request_timeout), PlatformError, api
        )
        self.namespace = config.namespace
        self.main_name = config.main_name
        self.canary_name = config.canary_name
        self.name = f"kubernetes namespace '{config.namespace}' (app '{config.app}')"

    @property
    def capabilities(self) -> PlatformCapabilities:
        """The main Deployment is updated in place and rolled back to a kept ReplicaSet
        revision; pods and the router are sampled only with ``platform.sample_pods`` (pod
        IPs are the cluster's network, not necessarily this machine's)."""
        return PlatformCapabilities(
            updates_main_in_place=True,
            restores_main=True,
            sampler_reach="replicas" if self.config.sample_pods else "nothing",
        )

    @property
    def api(self) -> KubeApi:
        return self._api.get()

    def _call(self, action: Callable[[], Any]) -> Any:
        return raising_as(PlatformError, action)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> PlatformStatus:
        return self._call(self._status)  # type: ignore[no-any-return]

    def _status(self) -> PlatformStatus:
        now = time.time()
        main = self.api.get(DEPLOYMENTS, self.namespace, self.main_name)
        canary = self.api.get(DEPLOYMENTS, self.namespace, self.canary_name)
        replicas = [pod.replica(now, self.config.container_port) for pod in self._pods()]
        annotations = ((main or {}).get("metadata") or {}).get("annotations") or {}
        return PlatformStatus(
            timestamp=now,
            replicas=tuple(replicas),
            stable_image=self._image_of(main) if main else None,
            canary_image=self._image_of(canary) if canary else None,
            previous_image=annotations.get(PREVIOUS_IMAGE) or None,
        )

    def pods(self) -> list[PodStatus]:
        """Every pod of the app (terminating ones excluded): phase, readiness, restart
        count, node."""
        return self._call(self._pods)  # type: ignore[no-any-return]

    def _pods(self) -> list[PodStatus]:
        found = []
        for pod in sorted(
            self.api.list(PODS, self.namespace, f"app={self.config.app}"),
            key=lambda p: str(p["metadata"]["name"]),
        ):
            meta = pod.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue  # terminating: leaving the group
            labels = meta.get("labels") or {}
            group: Group = "canary" if labels.get("version") == "canary" else "stable"
            found.append(pod_status(pod, group, self.config.container))
        events = warning_events(self.api, self.namespace, (p.name for p in found))
        return with_events(found, events)

    def _container_name(self, containers: list[Any]) -> str | None:
        if self.config.container:
            return self.config.container
        return str(containers[0].get("name")) if containers else None

    def _container(self, template: Mapping[str, Any], where: str) -> dict[str, Any]:
        containers = ((template.get("spec") or {}).get("containers")) or []
        name = self._container_name(containers)
        for c in containers:
            if c.get("name") == name:
                return c  # type: ignore[no-any-return]
        names = [c.get("name") for c in containers]
        raise PlatformError(
            f"{where} has no container {name!r} (containers: {names}); set platform.container "
            "to the container whose image is released"
        )

    def _image_of(self, deployment: Mapping[str, Any]) -> str | None:
        template = (deployment.get("spec") or {}).get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        name = self._container_name(containers)
        for c in containers:
            if c.get("name") == name:
                return str(c.get("image"))
        return None

    # -- objects -----------------------------------------------------------------------------
    def _labels(self, version: Group) -> dict[str, str]:
        return {"app": self.config.app, "version": version}

    def _new_deployment(self, name: str, image: str, replicas: int, version: Group) -> JSON:
        labels = self._labels(version)
        container = self.config.container or self.config.app
        grace = self.config.termination_grace_period
        lifecycle: JSON = {}
        if self.drain_seconds:
            # Serve on while the router drops the endpoint of a terminating pod (a rolling
            # update of the main Deployment, a deleted canary); SIGTERM comes after.
            lifecycle = {"lifecycle": {"preStop": {"sleep": {"seconds": self.drain_seconds}}}}
            grace += self.drain_seconds
        http_get = {"path": self.config.health_path, "port": self.config.container_port}
        readiness = {"httpGet": http_get, "periodSeconds": 2, "failureThreshold": 2}
        # Liveness restarts a pod that stopped answering (the restarts count as evidence);
        # lenient, so a slow start or a loaded node does not kill healthy pods.
        liveness = {
            "httpGet": http_get,
            "initialDelaySeconds": 10,
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 6,
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {**labels, **MANAGED_BY},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": grace,
                        "containers": [
                            {
                                "name": container,
                                "image": image,
                                "ports": [
                                    {"name": "http", "containerPort": self.config.container_port}
                                ],
                                "readinessProbe": readiness,
                                "livenessProbe": liveness,
                                # A crash's last log lines become its termination message.
                                "terminationMessagePolicy": "FallbackToLogsOnError",
                                **lifecycle,
                            }
                        ],
                    },
                },
            },
        }

    def _service(self, name: str, version: Group, ports: list[Any] | None = None) -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {**self._labels(version), **MANAGED_BY},
            },
            "spec": {
                "selector": self._labels(version),
                "ports": ports
                or [
                    {
                        "name": "http",
                        "port": self.config.port,
                        "targetPort": self.config.container_port,
                    }
                ],
            },
        }

    def _require_main(self) -> JSON:
        main = self.api.get(DEPLOYMENTS, self.namespace, self.main_name)
        if main is None:
            raise PlatformError(
                f"the main Deployment '{self.main_name}' does not exist in namespace "
                f"'{self.namespace}'; deploy it first, or set platform.stable_image so the "
                "first stage creates it"
            )
        return main

    def _check_selector(self, main: Mapping[str, Any]) -> None:
        selector = ((main.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if selector.get("version") in (None, "canary") or selector.get("app") != self.config.app:
            raise PlatformError(
                f"the selector of the main Deployment '{self.main_name}' is {selector}: it must "
                f"select app={self.config.app} and a version label other than 'canary' (e.g. "
                "version: stable), or it would also select the canary pods. Add "
                "'version: stable' to its selector and pod labels"
            )

    # -- protocol ----------------------------------------------------------------------------
    def deploy_stable(self, image: str, replicas: int) -> PlatformStatus:
        def run() -> PlatformStatus:
            main = self.api.get(DEPLOYMENTS, self.namespace, self.main_name)
            if main is None:
                self.api.create(
                    DEPLOYMENTS,
                    self.namespace,
                    self._new_deployment(self.main_name, image, replicas, "stable"),
                )
            else:
                self._set_image(main, image, replicas)
            if self.api.get(SERVICES, self.namespace, self.main_name) is None:
                self.api.create(SERVICES, self.namespace, self._service(self.main_name, "stable"))
            self.wait_rollout(self.main_name)
            return self._status()

        return self._call(run)  # type: ignore[no-any-return]

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        def run() -> PlatformStatus:
            main = self._require_main()
            self._check_selector(main)
            canary = self.api.get(DEPLOYMENTS, self.namespace, self.canary_name)
            if canary is None:
                self.api.create(
                    DEPLOYMENTS, self.namespace, self._canary_from(main, image, replicas)
                )
            else:
                self._set_image(canary, image, replicas)
            if self.api.get(SERVICES, self.namespace, self.canary_name) is None:
                service = self.api.get(SERVICES, self.namespace, self.main_name)
                ports = ((service or {}).get("spec") or {}).get("ports")
                clean = [
                    {k: v for k, v in p.items() if k != "nodePort"} for p in ports or []
                ] or None
                self.api.create(
                    SERVICES, self.namespace, self._service(self.canary_name, "canary", clean)
                )
            self.wait_rollout(self.canary_name)
            return self._status()

        return self._call(run)  # type: ignore[no-any-return]

    def _canary_from(self, main: Mapping[str, Any], image: str, replicas: int) -> JSON:
        template = copy.deepcopy((main.get("spec") or {}).get("template") or {})
        metadata = template.setdefault("metadata", {})
        labels = {**(metadata.get("labels") or {}), **self._labels("canary")}
        metadata["labels"] = labels
        self._container(template, f"the main Deployment '{self.main_name}'")["image"] = image
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.canary_name,
                "namespace": self.namespace,
                "labels": {**self._labels("canary"), **MANAGED_BY},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": self._labels("canary")},
                "template": template,
            },
        }

    def _set_image(
        self,
        deployment: Mapping[str, Any],
        image: str,
        replicas: int | None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> JSON:
        """Merge-patch the released container's image (and replicas, annotations)."""
        name = str(deployment["metadata"]["name"])
        template = (deployment.get("spec") or {}).get("template") or {}
        container = self._container(template, f"Deployment '{name}'")
        patch: dict[str, Any] = {"spec": {}}
        if container.get("image") != image:
            # A merge patch replaces lists whole: send every container, one image changed.
            containers = copy.deepcopy(template["spec"]["containers"])
            for c in containers:
                if c.get("name") == container.get("name"):
                    c["image"] = image
            patch["spec"]["template"] = {"spec": {"containers": containers}}
        if replicas is not None:
            patch["spec"]["replicas"] = replicas
        if annotations:
            patch["metadata"] = {"annotations": dict(annotations)}
        return self.api.merge_patch(DEPLOYMENTS, self.namespace, name, patch)

    def update_main(self, image: str, replicas: int, *, record_previous: bool = True) -> None:
        """Main Deployment on ``image`` with ``replicas`` replicas, rolled out; its image
        before that is recorded as the previous image (or the record is cleared)."""

        def run() -> None:
            main = self._require_main()
            before = self._image_of(main)
            previous = before if record_previous and before != image else None
            if not record_previous or before != image:
                annotations: dict[str, str | None] = {PREVIOUS_IMAGE: previous}
            else:
                annotations = {}
            self._set_image(main, image, replicas, annotations)
            self.wait_rollout(self.main_name)

        self._call(run)

    def promote(self, *, record_previous: bool = True) -> PlatformStatus:
        """Main := the canary's image and replica count; the canary is removed (route the
        traffic to the main Service first)."""
        status = self.status()
        if status.canary_image is None:
            raise PlatformError(f"no canary Deployment '{self.canary_name}' to promote")
        replicas = max(1, len(status.group("canary")))
        self.update_main(status.canary_image, replicas, record_previous=record_previous)
        return self.rollback()

    def rollback(self) -> PlatformStatus:
        """Delete the canary Deployment and Service and wait until its pods are gone."""

        def run() -> PlatformStatus:
            self.api.delete(DEPLOYMENTS, self.namespace, self.canary_name)
            self.api.delete(SERVICES, self.namespace, self.canary_name)
            deadline = time.monotonic() + self.config.rollout_timeout
            while True:
                left = self.api.list(PODS, self.namespace, f"app={self.config.app},version=canary")
                gone = self.api.get(DEPLOYMENTS, self.namespace, self.canary_name) is None
                if gone and not left:
                    return self._status()
                if time.monotonic() > deadline:
                    names = [p["metadata"]["name"] for p in left]
                    raise PlatformError(
                        f"canary Deployment '{self.canary_name}' still has pods {names} "
                        f"{self.config.rollout_timeout:g}s after it was deleted"
                    )
                time.sleep(POLL)

        return self._call(run)  # type: ignore[no-any-return]

    def restore_main(self, image: str) -> PlatformStatus:
        """Main Deployment back on ``image``: its pod template becomes the one of the newest
        ReplicaSet revision that ran ``image`` (``kubectl rollout undo``), or only the image
        changes when no such revision is left; rolled out and verified."""

        def run() -> PlatformStatus:
            main = self._require_main()
            revision = self._revision_with(main, image)
            if revision is not None:
                template = copy.deepcopy(revision["spec"]["template"])
                labels = (template.get("metadata") or {}).get("labels") or {}
                labels.pop("pod-template-hash", None)
                # The whole template of that revision, as `kubectl rollout undo` does.
                self.api.json_patch(
                    DEPLOYMENTS,
                    self.namespace,
                    self.main_name,
                    [{"op": "replace", "path": "/spec/template", "value": template}],
                )
                patch: JSON = {"metadata": {"annotations": {PREVIOUS_IMAGE: None}}}
                self.api.merge_patch(DEPLOYMENTS, self.namespace, self.main_name, patch)
            else:
                self._set_image(main, image, None, {PREVIOUS_IMAGE: None})
            self.wait_rollout(self.main_name)
            active = self.active_replicaset()
            active_image = self._image_of(active) if active else None
            if active_image != image:
                raise PlatformError(
                    f"rollback of Deployment '{self.main_name}' to {image!r} did not take: its "
                    f"newest ReplicaSet runs {active_image!r}"
                )
            return self._status()

        return self._call(run)  # type: ignore[no-any-return]

    def _owned_replicasets(self, main: Mapping[str, Any]) -> list[JSON]:
        uid = main["metadata"].get("uid")
        selector = ((main.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        return [
            rs
            for rs in self.api.list(REPLICASETS, self.namespace, text or None)
            if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
        ]

    @staticmethod
    def _revision(rs: Mapping[str, Any]) -> int:
        try:
            return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
        except ValueError:
            return 0

    def _revision_with(self, main: Mapping[str, Any], image: str) -> JSON | None:
        matching = [rs for rs in self._owned_replicasets(main) if self._image_of(rs) == image]
        return max(matching, key=self._revision, default=None)

    def active_replicaset(self) -> JSON | None:
        """The main Deployment's ReplicaSet of the newest revision."""
        main = self._call(self._require_main)
        owned = self._call(lambda: self._owned_replicasets(main))
        return max(owned, key=self._revision, default=None)

    def cleanup(self) -> None:
        """Close the connection; the main Deployment keeps running (it is production)."""
        self._api.close()

    # -- waiting -----------------------------------------------------------------------------
    def wait_rollout(self, name: str) -> JSON:
        """Wait until Deployment ``name`` has rolled out completely."""
        timeout = self.config.rollout_timeout
        deadline = time.monotonic() + timeout
        looked = 0.0
        group: Group = "canary" if name == self.canary_name else "stable"
        while True:
            deployment = self.api.get(DEPLOYMENTS, self.namespace, name)
            if deployment is None:
                raise PlatformError(f"Deployment '{name}' in namespace '{self.namespace}' is gone")
            problem = rollout_problem(deployment)
            if problem is None:
                return deployment
            if time.monotonic() - looked >= 1.0:  # a crash loop does not wait out the timeout
                looked = time.monotonic()
                group_pods = [p for p in self._pods() if p.version == group]
                hopeless = [(p, why) for p in group_pods if (why := p.crash_looping())]
                if hopeless:
                    raise PlatformError(
                        f"Deployment '{name}' in namespace '{self.namespace}' cannot roll out: "
                        + "; ".join(f"pod {p.name} is in {why}" for p, why in hopeless)
                        + ". Pods: "
                        + "; ".join(p.describe() for p in group_pods)
                    )
            progressing = conditions(deployment).get("Progressing") or {}
            if progressing.get("reason") == "ProgressDeadlineExceeded" or (
                time.monotonic() > deadline
            ):
                pods = "; ".join(p.describe() for p in self._pods()) or "none"
                raise PlatformError(
                    f"Deployment '{name}' in namespace '{self.namespace}' did not roll out "
                    f"within {timeout:g}s: {problem}. Pods: {pods}"
                )
            time.sleep(POLL)


def rollout_problem(deployment: Mapping[str, Any]) -> str | None:
    """Why the Deployment has not rolled out yet, or None when it has."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return f"the controller has not observed generation {generation} yet (at {observed})"
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    if total > updated:
        return f"{total - updated} old replica(s) still running"
    if ready < wanted or available < wanted:
        return f"{ready} of {wanted} replicas ready, {available} available"
    return None

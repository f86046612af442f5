"""The Cloud Run platform: revisions of one service, told apart by traffic tags.

* main (``stable``): the revision tagged ``platform.stable_tag``; on first use the one
  revision that serves the service's traffic is adopted (tagged, its traffic pinned to
  it so that new revisions get none by themselves);
* canary: a new revision of the release image tagged ``platform.canary_tag``, created
  with no traffic (``template.revision`` named here, ``scaling.min_instance_count`` =
  the stage's replicas);
* previous: the main revision before the last promotion, tagged
  ``platform.previous_tag`` at 0 %; a rollback sends 100 % back to it.

Every change is one ``services.patch`` of the service's ``template`` and ``traffic``
(see :class:`~.client.CloudRunApi` for etag retries and long-running operations);
what the platform reports is read from the service's ``traffic_statuses`` (the split
Cloud Run serves) and its revisions.  Cloud Run does not list instances: each revision
is reported as ``scaling.min_instance_count`` (at least 1) replicas, read back from
the revision, with its readiness and its tag URL as endpoint.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_release.canary.platform import (
    Group,
    PlatformCapabilities,
    PlatformStatus,
    PlatformTerms,
)
from pytest_release.canary.platforms.cloud_run.client import CloudRunApi, short_name
from pytest_release.canary.platforms.cloud_run.config import CloudRunPlatformConfig
from pytest_release.canary.samples import ReplicaStatus
from pytest_release.errors import PlatformError

if TYPE_CHECKING:
    from google.cloud import run_v2

READY = 4  # google.cloud.run_v2.Condition.State.CONDITION_SUCCEEDED
LATEST = 1  # TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = 2  # TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION


@dataclass(frozen=True)
class Revision:
    """One revision as the API reports it."""

    name: str  # short name, as in traffic targets
    image: str
    ready: bool
    message: str
    min_instances: int
    created: float  # create_time, seconds since the epoch


@dataclass
class Traffic:
    """A service's traffic as tags and percentages per revision (short names)."""

    tags: dict[str, str] = field(default_factory=dict)  # tag -> revision
    percents: dict[str, int] = field(default_factory=dict)  # revision -> percent
    urls: dict[str, str] = field(default_factory=dict)  # tag -> URL (served only)

    @classmethod
    def served(cls, service: run_v2.Service) -> Traffic:
        """What Cloud Run serves (``traffic_statuses``; LATEST resolved)."""
        traffic = cls()
        latest = short_name(service.latest_ready_revision)
        for target in service.traffic_statuses:
            revision = latest if int(target.type_) == LATEST else target.revision
            if target.percent:
                traffic.percents[revision] = traffic.percents.get(revision, 0) + target.percent
            if target.tag:
                traffic.tags[target.tag] = revision
                traffic.urls[target.tag] = target.uri
        return traffic

    def serving(self) -> list[str]:
        return [r for r, p in self.percents.items() if p > 0]

    def targets(self) -> list[run_v2.TrafficTarget]:
        """Traffic targets pinned to revisions: one per serving revision (with one of
        its tags), one at 0 % per other tag."""
        from google.cloud import run_v2

        tags_of: dict[str, list[str]] = {}
        for tag, revision in sorted(self.tags.items()):
            tags_of.setdefault(revision, []).append(tag)
        targets = []
        for revision, percent in sorted(self.percents.items()):
            if percent > 0:
                tags = tags_of.pop(revision, [])
                first = tags.pop(0) if tags else ""
                targets.append(run_v2.TrafficTarget(revision=revision, percent=percent, tag=first))
                tags_of[revision] = tags
        for revision, tags in sorted(tags_of.items()):
            targets += [run_v2.TrafficTarget(revision=revision, tag=tag) for tag in tags]
        pinned = run_v2.TrafficTargetAllocationType(REVISION)
        for target in targets:
            target.type_ = pinned
        return targets


def _target_key(target: Any) -> tuple[int, str, int, str]:
    return (int(target.type_), str(target.revision), int(target.percent), str(target.tag))


@dataclass(frozen=True)
class Snapshot:
    """The service and its revisions, read together."""

    service: run_v2.Service
    revisions: Mapping[str, Revision]
    traffic: Traffic

    def image(self, revision: str | None) -> str | None:
        info = self.revisions.get(revision or "")
        return info.image if info else None


class CloudRunPlatform:
    """:class:`~pytest_release.canary.platform.Platform` over one Cloud Run service."""

    terms = PlatformTerms(main="main revision", unit="revision", listing="revisions")

    def __init__(self, config: CloudRunPlatformConfig, api: CloudRunApi | None = None) -> None:
        self.config = config
        self.api = api or CloudRunApi(config)
        self.name = f"Cloud Run service '{config.service}' ({config.project}, {config.region})"
        self._capabilities: PlatformCapabilities | None = None

    @property
    def capabilities(self) -> PlatformCapabilities:
        """It adopts the serving revision as main (it creates no service), the canary
        revision is re-tagged main on promotion, and main returns to a kept revision.  The
        sampler's direct requests speak plain HTTP: on run.app URLs (HTTPS) only the load
        through the service URL is sent (an emulator, a proxy: everything)."""
        if self._capabilities is None:
            plain = str(self.api.get_service().uri).startswith("http://")
            self._capabilities = PlatformCapabilities(
                creates_main=False,
                restores_main=True,
                sampler_reach="replicas" if plain else "router",
            )
        return self._capabilities

    # -- reading ---------------------------------------------------------------------------
    def _image(self, containers: Any) -> str:
        for container in containers:
            if self.config.container in (None, container.name):
                return str(container.image)
        names = [c.name for c in containers]
        raise PlatformError(
            f"{self.name} has no container {self.config.container!r} (containers: {names}); "
            "set platform.container to the container whose image is released"
        )

    def snapshot(self) -> Snapshot:
        service = self.api.get_service()
        revisions = {}
        for r in self.api.list_revisions():
            ready = [c for c in r.conditions if c.type_ == "Ready"]
            revisions[short_name(r.name)] = Revision(
                name=short_name(r.name),
                image=self._image(r.containers),
                ready=bool(ready) and int(ready[0].state) == READY and not r.reconciling,
                message=ready[0].message if ready else "no Ready condition yet",
                min_instances=int(r.scaling.min_instance_count),
                created=r.create_time.timestamp() if r.create_time else 0.0,
            )
        return Snapshot(service, revisions, Traffic.served(service))

    def main_revision(self, snap: Snapshot) -> str | None:
        """The tagged main revision, or (not adopted yet) the one serving revision."""
        traffic = snap.traffic
        if self.config.stable_tag in traffic.tags:
            return traffic.tags[self.config.stable_tag]
        serving = [r for r in traffic.serving() if r != traffic.tags.get(self.config.canary_tag)]
        return serving[0] if len(serving) == 1 else None

    def status(self) -> PlatformStatus:
        return self.status_of(self.snapshot())

    def status_of(self, snap: Snapshot) -> PlatformStatus:
        now = time.time()
        tags = snap.traffic.tags
        main = self.main_revision(snap)
        canary = tags.get(self.config.canary_tag)
        replicas: list[ReplicaStatus] = []
        for version, revision, tag in (
            ("stable", main, self.config.stable_tag),
            ("canary", canary, self.config.canary_tag),
        ):
            if revision is not None:
                url = snap.traffic.urls.get(tag) or snap.service.uri
                replicas += self._replicas(snap, revision, version, url, now)  # type: ignore[arg-type]
        return PlatformStatus(
            timestamp=now,
            replicas=tuple(replicas),
            stable_image=snap.image(main),
            canary_image=snap.image(canary),
            previous_image=snap.image(tags.get(self.config.previous_tag)),
        )

    def _replicas(
        self, snap: Snapshot, revision: str, version: Group, url: str, now: float
    ) -> list[ReplicaStatus]:
        info = snap.revisions.get(revision)
        count = max(1, info.min_instances) if info else 1
        endpoint = url.split("://", 1)[-1].rstrip("/") or "-"
        return [
            ReplicaStatus(
                timestamp=now,
                name=revision if count == 1 else f"{revision}#{k}",
                version=version,
                image=info.image if info else "(revision not found)",
                running=info is not None,
                ready=info is not None and info.ready,
                restarts=0,
                endpoint=endpoint,
            )
            for k in range(1, count + 1)
        ]

    # -- writing ---------------------------------------------------------------------------
    def update(
        self,
        what: str,
        edit: Callable[[Traffic, run_v2.Service], None],
    ) -> run_v2.Service:
        """One service update: ``edit`` changes the served traffic (and the template) of
        a fresh read; written as pinned targets; nothing is written when nothing changes."""
        from google.cloud import run_v2

        def change(service: run_v2.Service) -> run_v2.Service | None:
            traffic = Traffic.served(service)
            template = run_v2.RevisionTemplate.serialize(service.template)
            edit(traffic, service)
            targets = traffic.targets()
            if run_v2.RevisionTemplate.serialize(service.template) == template and sorted(
                map(_target_key, service.traffic)
            ) == sorted(map(_target_key, targets)):
                return None
            service.traffic = targets
            return service

        return self.api.update_service(what, change)

    def _tag(self, traffic: Traffic, tag: str) -> str:
        if tag not in traffic.tags:
            raise PlatformError(
                f"{self.name} has no revision tagged '{tag}' (tags: {sorted(traffic.tags)}); "
                "run the stage that deploys it first"
            )
        return traffic.tags[tag]

    def adopt_main(self) -> PlatformStatus:
        """Tag the serving revision as main (first use), traffic pinned to it."""
        stable_tag, canary_tag = self.config.stable_tag, self.config.canary_tag

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            if stable_tag in traffic.tags:
                return
            serving = [r for r in traffic.serving() if r != traffic.tags.get(canary_tag)]
            if len(serving) != 1:
                split = ", ".join(f"{r} {traffic.percents[r]}%" for r in serving) or "none"
                raise PlatformError(
                    f"{self.name} serves its traffic from {len(serving)} revisions ({split}): "
                    "a canary needs one main revision. Send 100 % to one revision "
                    f"('gcloud run services update-traffic {self.config.service} "
                    "--to-revisions=REVISION=100') and run the stage again"
                )
            traffic.tags[stable_tag] = serving[0]

        self.update("tagging the main revision", edit)
        return self.status()

    def deploy_stable(self, image: str, replicas: int) -> PlatformStatus:
        raise PlatformError(
            f"{self.name}: the platform does not create services; deploy the service once "
            f"('gcloud run deploy {self.config.service} --image={image} "
            f"--region={self.config.region} --project={self.config.project}') and its serving "
            "revision becomes the main one"
        )

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        """A new revision of ``image`` (min instances ``replicas``) tagged canary, at the
        current canary share (0 % when there was no canary); a canary of the same image
        and instances that is ready is kept."""
        snap = self.snapshot()
        old = snap.traffic.tags.get(self.config.canary_tag)
        info = snap.revisions.get(old or "")
        if info and info.image == image and info.ready and max(1, info.min_instances) == replicas:
            return self.status_of(snap)
        new = f"{self.config.service}-{secrets.token_hex(4)}"
        stable_tag, canary_tag = self.config.stable_tag, self.config.canary_tag

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            main = self._tag(traffic, stable_tag)
            for container in service.template.containers:
                if self.config.container in (None, container.name):
                    container.image = image
                    break
            service.template.revision = new
            service.template.scaling.min_instance_count = replicas
            previous = traffic.tags.get(canary_tag)
            traffic.tags[canary_tag] = new
            if previous is not None and previous != main:
                share = traffic.percents.pop(previous, 0)
                if share:
                    traffic.percents[new] = share

        try:
            self.update(f"deploying revision '{new}' of {image}", edit)
        except PlatformError:
            self.forget(new)
            raise
        if old is not None:
            self.delete_unused(old)
        return self.status()

    def promote(self, *, record_previous: bool = True) -> PlatformStatus:
        """The canary revision becomes the main one at 100 %; the old main keeps the
        previous tag at 0 % (or, ``record_previous=False``, no tag)."""
        stable_tag, canary_tag, previous_tag = (
            self.config.stable_tag,
            self.config.canary_tag,
            self.config.previous_tag,
        )

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            canary = self._tag(traffic, canary_tag)
            old = traffic.tags.get(stable_tag)
            del traffic.tags[canary_tag]
            traffic.tags[stable_tag] = canary
            if record_previous and old is not None and old != canary:
                traffic.tags[previous_tag] = old
            elif not record_previous:
                traffic.tags.pop(previous_tag, None)
            traffic.percents = {canary: 100}

        self.update("promoting the canary revision", edit)
        return self.status()

    def rollback(self) -> PlatformStatus:
        """The canary tag is removed, its share goes to the main revision, and the canary
        revision is deleted."""
        stable_tag, canary_tag = self.config.stable_tag, self.config.canary_tag
        removed: list[str] = []

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            removed.clear()
            canary = traffic.tags.pop(canary_tag, None)
            if canary is None:
                return
            removed.append(canary)
            main = self._tag(traffic, stable_tag)
            if canary != main:
                share = traffic.percents.pop(canary, 0)
                traffic.percents[main] = traffic.percents.get(main, 0) + share

        self.update("removing the canary revision's tag and traffic", edit)
        for revision in removed:
            self.delete_unused(revision)
        return self.status()

    def restore_main(self, image: str) -> PlatformStatus:
        """100 % to the revision of ``image`` (the previous one, else the newest ready
        revision of it), tagged main; the canary is removed first."""
        snap = self.snapshot()
        if snap.image(self.main_revision(snap)) == image:
            return self.status_of(snap)
        previous = snap.traffic.tags.get(self.config.previous_tag)
        candidates = [previous] if snap.image(previous) == image else []
        newest = sorted(snap.revisions.values(), key=lambda r: r.created, reverse=True)
        candidates += [r.name for r in newest if r.image == image]
        ready = [r for r in candidates if r and snap.revisions[r].ready]
        if not ready:
            known = ", ".join(f"{r.name} ({r.image})" for r in snap.revisions.values())
            raise PlatformError(
                f"{self.name} has no ready revision of {image!r} to return to (revisions: "
                f"{known or 'none'}); deploy it again with 'gcloud run deploy' or roll back "
                "to another image"
            )
        target = ready[0]
        if self.config.canary_tag in snap.traffic.tags:
            self.rollback()
        stable_tag, previous_tag = self.config.stable_tag, self.config.previous_tag

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            traffic.tags[stable_tag] = target
            if traffic.tags.get(previous_tag) == target:
                del traffic.tags[previous_tag]
            traffic.percents = {target: 100}

        self.update(f"sending all traffic back to revision '{target}' ({image})", edit)
        return self.status()

    def forget(self, revision: str) -> None:
        """After a failed update: the service's traffic back to what it serves (the
        failed revision's tag goes), then the revision deleted when it exists."""
        try:
            self.update("restoring the served traffic", lambda traffic, service: None)
        except PlatformError:
            return  # the error that brought us here is the one to report
        self.delete_unused(revision)

    def delete_unused(self, revision: str) -> str | None:
        """Delete ``revision`` when it serves nothing and has no tag; why not, or None.
        A revision that cannot be deleted stays (untagged, no traffic, scaled to zero)."""
        snap = self.snapshot()
        traffic = snap.traffic
        if revision not in snap.revisions:
            return None
        if traffic.percents.get(revision) or revision in traffic.tags.values():
            return f"revision '{revision}' still serves traffic or has a tag"
        try:
            self.api.delete_revision(revision)
        except PlatformError as exc:
            return str(exc)
        return None

    def cleanup(self) -> None:
        """Nothing runs on this machine: the service is production and stays; the API
        clients are closed."""
        self.api.close()

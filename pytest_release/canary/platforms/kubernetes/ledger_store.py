"""The ledger in the cluster: a ConfigMap per application, a Lease as the rollout lock.

CI jobs on different runners share one ledger when it lives in the cluster they deploy
to (``[tool.pytest-release.ledger] backend = "kubernetes"``):

* the document is the ``ledger.json`` key of the ConfigMap
  ``pytest-release-ledger-<application>``; every change reads it, applies the change and
  writes it back with ``metadata.resourceVersion`` (optimistic concurrency): when another
  writer got there first the API server answers 409 Conflict and the change is applied
  again to the new document, so no entry is ever lost;
* the rollout lock is the ``coordination.k8s.io/v1`` Lease
  ``pytest-release-rollout-<application>``: taken when free or expired (create, or update
  at the read resourceVersion, so two runs cannot both take it), renewed every third of
  ``lease_duration`` while the stage runs, released at the end.  A crashed run's lock
  expires after ``lease_duration`` seconds;
* while it holds the lock, a rollout stage also renews a Lease of its own
  (:mod:`~pytest_release.canary.platforms.kubernetes.stage_lease`, time to live
  ``ledger.lease_ttl``): one still there after it expired is an abandoned rollout
  (:meth:`KubernetesLedgerStore.abandoned`), the same as the file backend's lease files.
  Its holder held the lock too, so the lock counts as free once its stage Lease expired.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_release.canary.platforms.kubernetes.client import (
    CONFIGMAPS,
    JSON,
    LEASES,
    KubeApi,
    KubeApiError,
    LazyApi,
)
from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
from pytest_release.canary.platforms.kubernetes.stage_lease import (
    StageLeaseHolder,
    name_in,
    stage_leases,
)
from pytest_release.config.plain_tables import LedgerConfig
from pytest_release.errors import LedgerError
from pytest_release.ledger.lease import Lease
from pytest_release.ledger.ledger import Change, Runs, parse_document, render_document

DATA_KEY = "ledger.json"
MAX_ATTEMPTS = 20
MAX_BYTES = 900 * 1024  # a ConfigMap holds at most 1 MiB


def application_name(config: LedgerConfig, rootdir: Path) -> str:
    if config.application:
        return config.application
    name = re.sub(r"[^a-z0-9-]+", "-", rootdir.name.lower()).strip("-")
    return name[:40] or "app"


def _micro_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class KubernetesLedgerStore:
    """:class:`~pytest_release.ledger.ledger.LedgerStore` in a ConfigMap, locked by a Lease."""

    def __init__(
        self,
        *,
        namespace: str,
        configmap: str,
        lease: str,
        access: ClusterAccess,
        rootdir: Path | None = None,
        lease_duration: int = 60,
        lease_ttl: float = 10.0,
        api: KubeApi | None = None,
    ) -> None:
        self.namespace = namespace
        self.configmap = configmap
        self.lease = lease
        self.access = access
        self.rootdir = rootdir
        self.lease_duration = lease_duration
        self.lease_ttl = lease_ttl
        self.stage_lease: StageLeaseHolder | None = None  # this process's, while it holds
        self._api = LazyApi(
            lambda: KubeApi(access, rootdir),
            lambda problem: LedgerError(f"the ledger {self.location} is unreachable: {problem}"),
            api,
        )
        self.location = f"ConfigMap {namespace}/{configmap} (Kubernetes ledger)"

    @classmethod
    def from_config(cls, config: LedgerConfig, rootdir: Path) -> KubernetesLedgerStore:
        app = application_name(config, rootdir)
        return cls(
            namespace=config.namespace,
            configmap=config.configmap or f"pytest-release-ledger-{app}",
            lease=config.lease or f"pytest-release-rollout-{app}",
            access=ClusterAccess(kubeconfig=config.kubeconfig, context=config.context),
            rootdir=rootdir,
            lease_duration=config.lease_duration,
            lease_ttl=config.lease_ttl,
        )

    @property
    def api(self) -> KubeApi:
        return self._api.get()

    # -- the document ------------------------------------------------------------------------
    def read(self) -> Runs:
        try:
            configmap = self.api.get(CONFIGMAPS, self.namespace, self.configmap)
        except KubeApiError as exc:
            raise LedgerError(f"cannot read the ledger {self.location}: {exc}") from None
        return self._runs(configmap)

    def _runs(self, configmap: JSON | None) -> Runs:
        if configmap is None:
            return []
        text = (configmap.get("data") or {}).get(DATA_KEY)
        if text is None:
            raise LedgerError(
                f"{self.location} exists but has no '{DATA_KEY}' key: it is not a "
                "pytest-release ledger; it was left untouched. Point ledger.configmap at "
                "another name or delete it"
            )
        return parse_document(str(text), self.location)

    def modify(self, change: Change) -> None:
        """Apply ``change`` atomically: retried on 409 Conflict (another writer)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                configmap = self.api.get(CONFIGMAPS, self.namespace, self.configmap)
                text = render_document(change(self._runs(configmap)))
                if len(text.encode("utf-8")) > MAX_BYTES:
                    raise LedgerError(
                        f"the ledger {self.location} would grow past {MAX_BYTES // 1024} KiB "
                        "(a ConfigMap holds at most 1 MiB): archive it (kubectl get configmap "
                        f"{self.configmap} -o yaml) and delete old runs"
                    )
                if configmap is None:
                    self.api.create(CONFIGMAPS, self.namespace, self._configmap(text, None))
                else:
                    version = configmap["metadata"]["resourceVersion"]
                    self.api.replace(
                        CONFIGMAPS, self.namespace, self.configmap, self._configmap(text, version)
                    )
                return
            except KubeApiError as exc:
                if exc.status == 409 and attempt < MAX_ATTEMPTS:
                    time.sleep(random.uniform(0.01, 0.05 * attempt))
                    continue
                if exc.status == 409:
                    raise LedgerError(
                        f"cannot update the ledger {self.location}: {MAX_ATTEMPTS} attempts "
                        "conflicted with other writers; try again"
                    ) from None
                raise LedgerError(f"cannot update the ledger {self.location}: {exc}") from None

    def _metadata(self, name: str, version: str | None) -> JSON:
        """The metadata of our object ``name``; with ``version`` (read with the object) the
        API server refuses the write when another writer changed the object since."""
        metadata: JSON = {
            "name": name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "pytest-release"},
        }
        if version is not None:
            metadata["resourceVersion"] = version
        return metadata

    def _configmap(self, text: str, resource_version: str | None) -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self._metadata(self.configmap, resource_version),
            "data": {DATA_KEY: text},
        }

    # -- the lock ----------------------------------------------------------------------------
    @contextmanager
    def rollout_lock(self, owner: str) -> Iterator[None]:
        identity = f"{owner} [{random.getrandbits(48):012x}]"
        lease = self._acquire(identity)
        stop = threading.Event()
        holder = _Renewer(self, identity, lease, stop)
        thread = threading.Thread(target=holder.run, name="pytest-release-lease", daemon=True)
        thread.start()
        try:
            self.stage_lease = StageLeaseHolder(
                self.api, self.namespace, self.lease, identity, owner, self.lease_ttl
            ).start()
        except KubeApiError as exc:
            stop.set()
            self._release(identity)
            raise LedgerError(
                f"cannot create the stage's lease beside the rollout lock Lease "
                f"{self.namespace}/{self.lease}: {exc}"
            ) from None
        try:
            yield
        finally:
            self.stage_lease.release()
            self.stage_lease = None
            stop.set()
            thread.join(self.lease_duration)
            self._release(identity)

    # -- abandoned rollouts ------------------------------------------------------------------
    def _expired_stage_leases(self) -> list[tuple[Lease, str]]:
        own = self.stage_lease.location if self.stage_lease is not None else None
        try:
            leases = stage_leases(self.api, self.namespace, self.lease)
        except KubeApiError as exc:
            raise LedgerError(f"cannot read the stage leases of {self.location}: {exc}") from None
        return [(lease, who) for lease, who in leases if lease.expired() and lease.location != own]

    def abandoned(self) -> list[Lease]:
        """Stage Leases that expired: their stages died without ending."""
        return [lease for lease, _ in self._expired_stage_leases()]

    def settle(self, lease: Lease) -> None:
        name = name_in(lease, self.namespace)
        if name is None:
            raise LedgerError(
                f"{lease.location} is not a stage lease of {self.location}; nothing was removed"
            )
        try:
            self.api.delete(LEASES, self.namespace, name)
        except KubeApiError as exc:
            raise LedgerError(f"cannot delete the stage lease {lease.location}: {exc}") from None

    def _lease_body(self, identity: str | None, version: str | None, acquired: bool) -> JSON:
        now = _micro_time(datetime.now(UTC))
        spec: dict[str, Any] = {
            "holderIdentity": identity,
            "leaseDurationSeconds": self.lease_duration,
            "renewTime": now,
        }
        if acquired:
            spec["acquireTime"] = now
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": self._metadata(self.lease, version),
            "spec": spec,
        }

    def _held_by_other(self, lease: JSON, identity: str) -> str | None:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder or holder == identity:
            return None
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.lease_duration)
        if renewed is not None and renewed + duration < time.time():
            return None  # expired: the holder crashed or lost the cluster
        if holder in {who for _, who in self._expired_stage_leases()}:
            return None  # its stage Lease expired: the holder died (an abandoned rollout)
        since = spec.get("acquireTime") or "?"
        return f"{holder}, since {since}, renewed {spec.get('renewTime') or '?'}"

    def _acquire(self, identity: str) -> JSON:
        where = f"Lease {self.namespace}/{self.lease}"
        try:
            lease = self.api.get(LEASES, self.namespace, self.lease)
            if lease is None:
                return self.api.create(
                    LEASES, self.namespace, self._lease_body(identity, None, True)
                )
            other = self._held_by_other(lease, identity)
            if other is not None:
                raise LedgerError(
                    f"another rollout holds the lock ({other}); wait for it to finish, or "
                    f"if that run is gone, wait {self.lease_duration}s for the lock to "
                    f"expire. Lock: {where}"
                )
            version = lease["metadata"]["resourceVersion"]
            return self.api.replace(
                LEASES, self.namespace, self.lease, self._lease_body(identity, version, True)
            )
        except KubeApiError as exc:
            if exc.status == 409:
                current = self.api.get(LEASES, self.namespace, self.lease) or {}
                holder = (current.get("spec") or {}).get("holderIdentity") or "another run"
                raise LedgerError(
                    f"another rollout took the lock at the same time ({holder}); wait for it "
                    f"to finish. Lock: {where}"
                ) from None
            raise LedgerError(f"cannot take the rollout lock {where}: {exc}") from None

    def _renew(self, identity: str, lease: JSON) -> JSON:
        version = lease["metadata"]["resourceVersion"]
        body = self._lease_body(identity, version, False)
        body["spec"]["acquireTime"] = (lease.get("spec") or {}).get("acquireTime")
        return self.api.replace(LEASES, self.namespace, self.lease, body)

    def _release(self, identity: str) -> None:
        try:
            lease = self.api.get(LEASES, self.namespace, self.lease)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != identity:
                return
            version = lease["metadata"]["resourceVersion"]
            body = self._lease_body(None, version, False)
            body["spec"]["leaseDurationSeconds"] = self.lease_duration
            self.api.replace(LEASES, self.namespace, self.lease, body)
        except KubeApiError:
            # Unreachable or taken over: the lock expires after lease_duration by itself.
            return


class _Renewer:
    """Renews the Lease every third of its duration until ``stop`` is set."""

    def __init__(
        self, store: KubernetesLedgerStore, identity: str, lease: JSON, stop: threading.Event
    ) -> None:
        self.store = store
        self.identity = identity
        self.lease = lease
        self.stop = stop

    def run(self) -> None:
        period = max(1.0, self.store.lease_duration / 3)
        while not self.stop.wait(period):
            try:
                self.lease = self.store._renew(self.identity, self.lease)
            except KubeApiError as exc:
                if exc.status == 409:
                    try:
                        current = self.store.api.get(LEASES, self.store.namespace, self.store.lease)
                    except KubeApiError:
                        continue
                    holder = ((current or {}).get("spec") or {}).get("holderIdentity")
                    if current is not None and holder == self.identity:
                        self.lease = current  # our own lease, newer version: retry next time
                        continue
                    return  # someone else holds it now: stop renewing
                continue  # unreachable: try again, the lease lasts a while

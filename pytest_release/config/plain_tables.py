"""The tables of ``[tool.pytest-release]`` a stage's spine reads: stages and their
rollout step, the ledger, and a gate's coverage threshold.

They are frozen dataclasses, not pydantic models: pydantic validates them as parts of
:class:`~pytest_release.config.tables.ReleaseConfigModel` (unknown keys are errors, as
for every table), and what it returns are these plain values.  So this module imports
no pydantic, and a stage that runs from a cached plan (:mod:`.plan_cache`) or an xdist
worker reads them without it.  Gate tables stay pydantic models: a gate kind subclasses
:class:`~pytest_release.config.tables.GateConfig`; the spine reads a gate's common
settings as :class:`~pytest_release.config.common_gate.CommonGateSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pytest_release.config.types import MAX_DURATION, Bounds, Duration, PositiveDuration

# pydantic reads a dataclass's settings from this attribute: unknown keys are errors.
FORBID_UNKNOWN_KEYS: dict[str, Any] = {"extra": "forbid"}


@dataclass(frozen=True)
class CoverageConfig:
    """A coverage threshold for a gate: coverage.py measures the code its tests run (on
    every process), and a check after the gate's last test compares the total."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID_UNKNOWN_KEYS

    fail_under: Annotated[float, Bounds(ge=0, le=100)]
    """Minimum total coverage in percent; below it the gate fails."""
    source: tuple[str, ...] = ()
    """Packages or directories (relative to the rootdir) to measure; empty: everything coverage.py
    sees under the rootdir."""
    branch: bool = False
    """Measure branch coverage too."""


@dataclass(frozen=True)
class RolloutConfig:
    """The rollout step a stage performs (canary engine)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID_UNKNOWN_KEYS

    action: Literal["canary", "promote", "rollback", "bluegreen-deploy", "bluegreen-switch"] = (
        "canary"
    )
    """canary: deploy beside stable and judge; promote: update the main deployment and clean up the
    canary; rollback: return to the previous version. Blue/green (docs/blue-green.md):
    bluegreen-deploy puts the new version beside the live one at full size with no production
    traffic and judges it; bluegreen-switch sends all traffic to it in one step and keeps the old
    version warm as the standby (switch back: rollback; retire the standby: promote)."""
    replicas: Annotated[int, Bounds(ge=0)] = 1
    """Replicas of the new version."""
    weight: Annotated[int, Bounds(ge=0, le=100)] = 10
    """Percent of traffic to canary; for action 'canary' 1 to 99, and above the weight of the canary
    stage it requires."""
    hold: Duration = 900.0
    """Seconds the canary is judged."""
    interval: Duration = 60.0
    """Seconds per judged interval; a hold has at most 10000 intervals."""


@dataclass(frozen=True)
class StageConfig:
    """One pytest session of the pipeline."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID_UNKNOWN_KEYS

    description: str = ""
    """Shown in reports."""
    gates: tuple[str, ...] = ()
    """Gates in run order."""
    requires: tuple[str, ...] = ()
    """Stages whose latest run must have passed for the release."""
    rollout: RolloutConfig | None = None
    """The rollout step of a canary/promote/rollback stage."""
    target: str | None = None
    """The deployment environment (a table of `environments`, e.g. 'staging') the stage works on:
    its gate settings and environment variables apply. Unset: production, the gates as
    configured."""
    environment: str | None = None
    """GitHub environment the stage's job runs in (`python -m pytest_release workflow`); its
    protection rules (required reviewers) approve the stage, recorded in the ledger with
    --approved-via=<environment>."""


@dataclass(frozen=True)
class LedgerConfig:
    """Where stage runs are recorded."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID_UNKNOWN_KEYS

    backend: Literal["file", "kubernetes"] = "file"
    """Ledger storage backend: 'file' (path), or 'kubernetes' (a ConfigMap per application, a
    coordination.k8s.io Lease as the rollout lock) for CI jobs on different runners."""
    path: str = ".pytest-release/ledger.json"
    """Ledger file, relative to the rootdir (--ledger, ini release_ledger)."""
    lock_timeout: PositiveDuration = 60.0
    """file: seconds to wait for the ledger's write lock (held by another stage writing the ledger)
    before the stage stops with an error."""
    lease_ttl: PositiveDuration = 10.0
    """A rollout stage renews its lease (file: <ledger>.leases/; kubernetes: a Lease) every quarter
    of this; a lease older than this means the stage died (abandoned: --release-status says so,
    other stages refuse until `--stage=rollback` reconciles it; the local supervisor and the
    k8s-watchdog set 100% stable)."""
    namespace: str = "default"
    """kubernetes: namespace of the ConfigMap and the Lease."""
    application: str | None = None
    """kubernetes: the application; names the ConfigMap pytest-release-ledger-<application> and the
    Lease pytest-release-rollout-<application>. Unset: the rootdir's name."""
    configmap: str | None = None
    """kubernetes: ConfigMap name override."""
    lease: str | None = None
    """kubernetes: Lease name override."""
    lease_duration: Annotated[int, Bounds(ge=5, le=int(MAX_DURATION))] = 60
    """kubernetes: seconds a rollout lock lives without renewal (renewed every third of it while a
    stage runs; a crashed run's lock expires after it)."""
    kubeconfig: str | None = None
    """kubernetes: kubeconfig file (relative to the rootdir); unset: $KUBECONFIG, ~/.kube/config, or
    the in-cluster service account."""
    context: str | None = None
    """kubernetes: kubeconfig context."""

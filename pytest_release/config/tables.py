"""The tables of ``[tool.pytest-release]`` as pydantic models: stages, gates (a gate
kind subclasses :class:`GateConfig`), rollout, ledger, coverage and environments.
Unknown keys are errors.  Loading and merging them is :mod:`.release`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.types import MAX_DURATION, Duration, EnvVars, PositiveDuration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CoverageConfig(_Strict):
    """A coverage threshold for a gate: coverage.py measures the code its tests run (on
    every process), and a check after the gate's last test compares the total."""

    fail_under: float = Field(ge=0, le=100)
    """Minimum total coverage in percent; below it the gate fails."""
    source: tuple[str, ...] = ()
    """Packages or directories (relative to the rootdir) to measure; empty: everything coverage.py
    sees under the rootdir."""
    branch: bool = False
    """Measure branch coverage too."""


class GateConfig(_Strict):
    """Keys every gate table accepts; a gate kind subclasses this to add its own."""

    kind: str = "tests"
    """Gate implementation; other kinds add their own keys."""
    description: str = ""
    """Shown in reports."""
    markers: tuple[str, ...] = ()
    """Tests carrying any of these markers join the gate."""
    paths: tuple[str, ...] = ()
    """Glob patterns (relative to the rootdir) whose tests join the gate."""
    serial: bool = False
    """Run the gate's items in order in one process (also under xdist), for gates whose items are
    steps of one procedure."""
    coverage: CoverageConfig | None = None
    """Coverage threshold of the gate's tests (coverage.py), e.g. { fail_under = 85, source =
    ['src/shop'] }."""
    after: tuple[str, ...] | None = None
    """Gates that must finish first. Unset: the previous gate in the stage. []: none, the gate may
    run in parallel with others."""
    allow_empty: bool = False
    """An empty gate fails a full run of its stage unless true."""

    def deployment_claims(self) -> tuple[DeploymentClaim, ...]:
        """What of a deployment a stage running this gate acts on, which no other
        environment may share (:mod:`pytest_release.config.identity`); a gate kind that
        deploys overrides it (the canary gate: its platform and router)."""
        return ()

    def deploys_release_image(self) -> bool:
        """A rollout stage running this gate needs the release image (``--image``); the
        canary gate overrides it (false when its platform only observes a controller)."""
        return False


class RolloutConfig(_Strict):
    """The rollout step a stage performs (canary engine)."""

    action: Literal["canary", "promote", "rollback", "bluegreen-deploy", "bluegreen-switch"] = (
        "canary"
    )
    """canary: deploy beside stable and judge; promote: update the main deployment and clean up the
    canary; rollback: return to the previous version. Blue/green (docs/blue-green.md):
    bluegreen-deploy puts the new version beside the live one at full size with no production
    traffic and judges it; bluegreen-switch sends all traffic to it in one step and keeps the old
    version warm as the standby (switch back: rollback; retire the standby: promote)."""
    replicas: int = Field(default=1, ge=0)
    """Replicas of the new version."""
    weight: int = Field(default=10, ge=0, le=100)
    """Percent of traffic to canary; for action 'canary' 1 to 99, and above the weight of the canary
    stage it requires."""
    hold: Duration = 900.0
    """Seconds the canary is judged."""
    interval: Duration = 60.0
    """Seconds per judged interval; a hold has at most 10000 intervals."""


class StageConfig(_Strict):
    """One pytest session of the pipeline."""

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


class LedgerConfig(_Strict):
    """Where stage runs are recorded."""

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
    lease_duration: int = Field(default=60, ge=5, le=int(MAX_DURATION))
    """kubernetes: seconds a rollout lock lives without renewal (renewed every third of it while a
    stage runs; a crashed run's lock expires after it)."""
    kubeconfig: str | None = None
    """kubernetes: kubeconfig file (relative to the rootdir); unset: $KUBECONFIG, ~/.kube/config, or
    the in-cluster service account."""
    context: str | None = None
    """kubernetes: kubeconfig context."""


class EnvironmentConfig(_Strict):
    """A deployment environment other than production (e.g. staging): the same gates
    with other settings (another router port, state directory, namespace), chosen by a
    stage's ``target``. It shares no deployment with production or another environment:
    a canary gate its stages run needs its own local ``platform.state_dir`` and HAProxy
    ports, its own Kubernetes namespace (or Deployment, app label and routing object) or
    cluster context, its own Cloud Run service; otherwise loading fails and names the
    keys."""

    description: str = ""
    """Shown in reports."""
    gates: dict[str, dict[str, Any]] = {}
    """Per gate, settings merged over the gate's own table for stages that target this environment,
    e.g. { canary = { router = { port = 18100 } } }."""
    env: EnvVars = {}
    """Environment variables a stage targeting this environment exports to its processes and tools
    (e.g. the URL its smoke tests call); a variable already set in the job's environment wins."""


class ReleaseConfigModel(_Strict):
    reports_dir: str = "reports"
    """JUnit and stage reports (--reports-dir, ini release_reports_dir)."""
    secrets: tuple[str, ...] = ()
    """Environment variable names whose values are redacted."""
    ledger: LedgerConfig = LedgerConfig()
    """See `ledger`."""
    stages: dict[str, StageConfig] = {}
    """Stages by name, merged over the built-in ones."""
    gates: dict[str, dict[str, Any]] = {}
    """Gates by name, merged over the built-in ones."""
    environments: dict[str, EnvironmentConfig] = {}
    """Deployment environments other than production (e.g. staging) by name; a stage works on one
    with `target`."""

"""The tables of ``[tool.pytest-release]`` as pydantic models: gates (a gate kind
subclasses :class:`GateConfig`), environments and the whole configuration.  Stages,
rollout, ledger and coverage are plain dataclasses pydantic validates with them
(:mod:`.plain_tables`, re-exported here).  Unknown keys are errors.  Loading and
merging them is :mod:`.release`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.plain_tables import (
    CoverageConfig,
    LedgerConfig,
    RolloutConfig,
    StageConfig,
)
from pytest_release.config.types import EnvVars

__all__ = [
    "CoverageConfig",
    "EnvironmentConfig",
    "GateConfig",
    "LedgerConfig",
    "ReleaseConfigModel",
    "RolloutConfig",
    "StageConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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

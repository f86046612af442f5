"""The validated configuration as values: what a stage reads (:class:`ReleaseConfig`).

Built by :mod:`.release` (validation), from a cached plan (:mod:`.plan_cache`) or from
the controller's plan (an xdist worker, :mod:`pytest_release.stage.worker_plan`); this
module imports no pydantic, so a process that reads only a plan never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pytest_release.config.common_gate import CommonGateSettings
from pytest_release.config.lazy import Lazy
from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config.plain_tables import LedgerConfig, StageConfig
    from pytest_release.config.tables import GateConfig


@dataclass(frozen=True)
class Environment:
    """A validated deployment environment: every gate with its settings merged in."""

    name: str
    description: str
    env: Mapping[str, str]
    gates: Mapping[str, GateConfig]
    # What the spine reads of each gate (:mod:`.common_gate`), without its model.
    common: Mapping[str, CommonGateSettings]


@dataclass(frozen=True)
class ReleaseConfig:
    """The validated configuration: stages, gates (typed by kind) and global settings."""

    source: str
    reports_dir: str
    secrets: tuple[str, ...]
    # The ledger table, built when first read (an xdist worker never reads it).
    ledger_table: Lazy[LedgerConfig]
    stages: Mapping[str, StageConfig]
    # Gate tables (models of their kinds): only a gate kind's plugin reads them.
    gates: Mapping[str, GateConfig]
    # What the spine reads of each gate (:mod:`.common_gate`), without its model.
    common: Mapping[str, CommonGateSettings]
    environments: Mapping[str, Environment] = field(default_factory=dict)

    @property
    def ledger(self) -> LedgerConfig:
        return self.ledger_table.get()

    def for_stage(self, name: str) -> ReleaseConfig:
        """The configuration as stage ``name`` sees it: with a ``target``, that
        environment's gate settings replace the production ones."""
        target = self.stage(name).target
        if target is None:
            return self
        environment = self.environments[target]
        return replace(self, gates=environment.gates, common=environment.common)

    def stage(self, name: str) -> StageConfig:
        try:
            return self.stages[name]
        except KeyError:
            raise ReleaseConfigError(
                f"unknown stage {name!r}; stages in {self.source}: {', '.join(self.stages)}"
            ) from None

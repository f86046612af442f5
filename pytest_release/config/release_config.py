"""The validated configuration as values: what a stage reads (:class:`ReleaseConfig`).

Built by :mod:`.release` (validation, the controller) or from the controller's plan (an
xdist worker, :mod:`pytest_release.stage.worker_plan`); this module imports no pydantic,
so a worker that reads only its plan never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pytest_release.config.lazy import Lazy
from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config.tables import GateConfig, LedgerConfig, StageConfig


@dataclass(frozen=True)
class Environment:
    """A validated deployment environment: every gate with its settings merged in."""

    name: str
    description: str
    env: Mapping[str, str]
    gates: Mapping[str, GateConfig]


@dataclass(frozen=True)
class ReleaseConfig:
    """The validated configuration: stages, gates (typed by kind) and global settings."""

    source: str
    reports_dir: str
    secrets: tuple[str, ...]
    # The ledger table, built when first read (an xdist worker never reads it).
    ledger_table: Lazy[LedgerConfig]
    stages: Mapping[str, StageConfig]
    gates: Mapping[str, GateConfig]
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
        return replace(self, gates=self.environments[target].gates)

    def stage(self, name: str) -> StageConfig:
        try:
            return self.stages[name]
        except KeyError:
            raise ReleaseConfigError(
                f"unknown stage {name!r}; stages in {self.source}: {', '.join(self.stages)}"
            ) from None

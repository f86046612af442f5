"""Hooks pytest-release offers to gate plugins.

A gate plugin (built in or third party) implements these in a module registered as a
pytest plugin; the spine calls them and never needs editing for a new gate kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_release.config.plain_tables import LedgerConfig
    from pytest_release.config.tables import GateConfig
    from pytest_release.gating.gate_node import GateNode
    from pytest_release.ledger.ledger import LedgerStore
    from pytest_release.ledger.stage_run import StageOutcome, StageRun


@pytest.hookspec
def pytest_release_gate_kinds() -> dict[str, type[GateConfig]]:
    """Return the gate kinds this plugin implements, mapped to their config model.

    The model subclasses :class:`pytest_release.config.tables.GateConfig`; a gate table whose
    ``kind`` is one of these keys is validated with it (unknown keys are errors).
    """
    raise NotImplementedError


@pytest.hookspec
def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
    """Generate the items of a gate of the running stage (e.g. one per lint finding).

    Create them with ``SomeItem.from_parent(gate_node, name=...)``; ``gate_node.gate``
    is the gate's validated config and ``gate_node.run`` the stage being run.  Return
    None when the gate is not yours.  Called once per session on every process that
    collects (each xdist worker), so it must be deterministic; run an expensive tool
    once per session with :meth:`pytest_release.stage.run_dir.RunDir.run_once`.
    """
    raise NotImplementedError


@pytest.hookspec
def pytest_release_stage_finished(
    config: pytest.Config, run: StageRun, outcome: StageOutcome
) -> None:
    """Called on the controller once the stage's outcome is known, before the ledger
    and the reports are written (notifiers, rollback on failure).  A plugin changes the
    recorded result with ``get_stage_session(config).set_result(...)``."""


@pytest.hookspec(firstresult=True)
def pytest_release_ledger_store(
    ledger: LedgerConfig, path: Path, rootdir: Path
) -> LedgerStore | None:
    """Return the :class:`~pytest_release.ledger.ledger.LedgerStore` for ``ledger.backend`` when
    this plugin provides that backend, else None (``file`` is built in)."""

"""pytest-release: a service's release pipeline as ordered pytest sessions.

The public API, for authors of gate plugins (see ``docs/api.md``).  Importing this
package is cheap: each name but the errors is imported on first use, so ``pytest``
without ``--stage`` stays as fast as before.

Writing a gate kind takes three hooks in a module registered as a pytest plugin
(a ``conftest.py`` or an installed ``pytest11`` entry point):

* ``pytest_release_gate_kinds()`` maps the kind to its table, a :class:`GateConfig`
  subclass;
* ``pytest_release_gate_items(gate_node)`` returns the gate's items, subclasses of
  :class:`GateItem` made with ``Item.from_parent(gate_node, name=...)``, whose
  ``runtest`` raises :class:`GateCheckFailed` with the message to show;
* optionally ``pytest_release_stage_finished(config, run, outcome)``.

:func:`get_stage_session` gives the running stage (its :class:`StageRun`, the
:class:`RunDir` shared with xdist workers, the redactor); every error the plugin raises
on purpose is a :class:`ReleaseError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_release.config.lazy import lazy_attributes

# The errors are plain classes in a module that imports nothing: they come at once.
from pytest_release.errors import (
    EvidenceError,
    GateCheckFailed,
    GateSetupError,
    LedgerError,
    PlatformError,
    ReleaseConfigError,
    ReleaseError,
    RolloutError,
    RouterError,
)

if TYPE_CHECKING:
    from pytest_release.config.release import ReleaseConfig
    from pytest_release.config.tables import GateConfig
    from pytest_release.config.types import Duration, HttpPath, PositiveDuration
    from pytest_release.gating.gate_node import GateItem, GateNode
    from pytest_release.ledger.stage_run import GateResult, StageOutcome, StageRun
    from pytest_release.stage.run_dir import RunDir
    from pytest_release.stage.session import (
        StageSession,
        get_stage_session,
        require_stage_session,
    )

__all__ = [
    "Duration",
    "EvidenceError",
    "GateCheckFailed",
    "GateConfig",
    "GateItem",
    "GateNode",
    "GateResult",
    "GateSetupError",
    "HttpPath",
    "LedgerError",
    "PlatformError",
    "PositiveDuration",
    "ReleaseConfig",
    "ReleaseConfigError",
    "ReleaseError",
    "RolloutError",
    "RouterError",
    "RunDir",
    "StageOutcome",
    "StageRun",
    "StageSession",
    "get_stage_session",
    "require_stage_session",
]

_WHERE = {
    "GateConfig": "config.tables",
    "ReleaseConfig": "config.release",
    "Duration": "config.types",
    "HttpPath": "config.types",
    "PositiveDuration": "config.types",
    "GateItem": "gating.gate_node",
    "GateNode": "gating.gate_node",
    "RunDir": "stage.run_dir",
    "GateResult": "ledger.stage_run",
    "StageOutcome": "ledger.stage_run",
    "StageRun": "ledger.stage_run",
    "StageSession": "stage.session",
    "get_stage_session": "stage.session",
    "require_stage_session": "stage.session",
}

__getattr__ = lazy_attributes(__name__, _WHERE)


def __dir__() -> list[str]:
    return sorted(__all__)

"""Built-in gate kinds, one package each with the same shape:

``plugin.py``
    the ``pytest_release_*`` hooks of :mod:`pytest_release.hookspecs` (and fixtures);
    registered as a pytest plugin when a stage runs;
``config.py``
    the gate's table (a :class:`pytest_release.config.GateConfig` subclass);
``items.py`` and engine modules
    the generated items and the code that runs the gate's tool.

The kinds are listed here explicitly (no directory scan): adding a built-in gate kind
is a new package plus one line below.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_release.config import GateConfig

BUILTIN_GATE_PLUGINS: tuple[str, ...] = (
    "pytest_release.gates.lint.plugin",
    "pytest_release.gates.newman.plugin",
    "pytest_release.gates.docker.plugin",
    "pytest_release.gates.e2e.plugin",
    "pytest_release.gates.canary.plugin",
    "pytest_release.gates.perf.plugin",
)


def builtin_gate_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in BUILTIN_GATE_PLUGINS]


def builtin_gate_kinds() -> dict[str, type[GateConfig]]:
    """The kinds the built-in gates provide, as the ``pytest_release_gate_kinds`` hook
    would return them (for code that validates configuration outside a session)."""
    from pytest_release.config import GateConfig

    kinds: dict[str, type[GateConfig]] = {"tests": GateConfig}
    for module in builtin_gate_modules():
        hook = getattr(module, "pytest_release_gate_kinds", None)
        if hook is not None:
            kinds.update(hook())
    return kinds

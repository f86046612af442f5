"""Built-in gates.  Every module here is registered as a pytest plugin when a stage
runs (see :func:`pytest_release.plugin._register_builtin_gates`) and implements the
hooks of :mod:`pytest_release.hookspecs` for its gate kind."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_release.config import GateConfig


def builtin_gate_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]


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

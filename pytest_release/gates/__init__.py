"""Built-in gate kinds, one package each with the same shape:

``plugin.py``
    the ``pytest_release_*`` hooks of :mod:`pytest_release.hookspecs` (and fixtures);
    registered as a pytest plugin when a stage runs one of the kind's gates;
``config.py``
    the gate's table (a :class:`pytest_release.config.tables.GateConfig` subclass);
``items.py`` and engine modules
    the generated items and the code that runs the gate's tool.

The kinds are listed here explicitly (no directory scan): adding a built-in gate kind
is a new package plus one line below.  Nothing of a kind is imported until a
configuration names it (its table is validated) or a stage runs one of its gates (its
plugin is registered), so a stage pays only for the kinds it uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_release.config.tables import GateConfig

# kind -> (plugin module, "config module:its GateConfig subclass"), under pytest_release.gates
BUILTIN_GATES: dict[str, tuple[str, str]] = {
    "lint": ("lint.plugin", "lint.config:LintGateConfig"),
    "newman": ("newman.plugin", "newman.config:NewmanGateConfig"),
    "docker": ("docker.plugin", "docker.config:DockerGateConfig"),
    "e2e": ("e2e.plugin", "e2e.config:E2EGateConfig"),
    "canary": ("canary.plugin", "canary.config:CanaryGateConfig"),
    "perf": ("perf.plugin", "perf.config:PerfGateConfig"),
}

BUILTIN_GATE_PLUGINS: tuple[str, ...] = tuple(
    f"{__name__}.{plugin}" for plugin, _ in BUILTIN_GATES.values()
)


def builtin_gate_plugin(kind: str) -> str:
    """The plugin module of built-in ``kind``."""
    return f"{__name__}.{BUILTIN_GATES[kind][0]}"


def builtin_gate_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in BUILTIN_GATE_PLUGINS]


def builtin_gate_model(kind: str) -> type[GateConfig]:
    """The table of built-in ``kind``, imported now (its config module only)."""
    module_name, _, attribute = BUILTIN_GATES[kind][1].partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    model: type[GateConfig] = getattr(module, attribute)
    return model


class GateKinds(Mapping[str, "type[GateConfig]"]):
    """Gate kind -> table: ``tests``, the built-in kinds (each config module imported
    when its kind is first looked up) and ``extra`` (kinds of other plugins)."""

    def __init__(self, extra: Mapping[str, type[GateConfig]] | None = None) -> None:
        from pytest_release.config.tables import GateConfig

        self._loaded: dict[str, type[GateConfig]] = {"tests": GateConfig, **(extra or {})}
        self._names = [*self._loaded, *(k for k in BUILTIN_GATES if k not in self._loaded)]

    def __getitem__(self, kind: str) -> type[GateConfig]:
        if kind not in self._loaded:
            if kind not in BUILTIN_GATES:
                raise KeyError(kind)
            self._loaded[kind] = builtin_gate_model(kind)
        return self._loaded[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, kind: object) -> bool:
        return kind in self._loaded or kind in BUILTIN_GATES


def builtin_gate_kinds() -> dict[str, type[GateConfig]]:
    """The kinds the built-in gates provide, as the ``pytest_release_gate_kinds`` hook
    would return them (for code that validates configuration outside a session)."""
    kinds = GateKinds()
    return {kind: kinds[kind] for kind in kinds}

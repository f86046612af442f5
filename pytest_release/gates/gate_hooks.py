"""The two hooks every built-in gate kind implements alike.

``pytest_release_gate_kinds`` names the kind and its table; ``pytest_release_gate_items``
answers for the gates of that kind only and None for the others, as
:mod:`pytest_release.hookspecs` asks.  A gate plugin writes what differs, its items from
its validated table, and takes both hooks from :func:`gate_kind_hooks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from pytest_release.config.tables import GateConfig
from pytest_release.gating.gate_node import GateNode

G = TypeVar("G", bound=GateConfig)

KindsHook = Callable[[], dict[str, type[GateConfig]]]
ItemsHook = Callable[[GateNode], "list[pytest.Item] | None"]


def gate_kind_hooks(
    kind: str, model: type[G], items: Callable[[GateNode, G], list[pytest.Item]]
) -> tuple[KindsHook, ItemsHook]:
    """The plugin's ``pytest_release_gate_kinds`` and ``pytest_release_gate_items`` hooks
    for gates of ``kind``, validated as ``model``, whose items are ``items(gate_node, gate)``.

    Assign them to those names at the plugin module's top level: pytest registers the
    hooks it finds there by name.
    """

    @pytest.hookimpl
    def pytest_release_gate_kinds() -> dict[str, type[GateConfig]]:
        return {kind: model}

    @pytest.hookimpl
    def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
        if gate_node.common.kind != kind:
            return None  # read no other kind's table (a tests gate may have none loaded)
        gate = gate_node.gate
        return items(gate_node, gate) if isinstance(gate, model) else None

    return pytest_release_gate_kinds, pytest_release_gate_items

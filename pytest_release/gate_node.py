"""The collector that holds a gate's generated items, and a base class for them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from pytest_release.errors import GateCheckFailed

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr
    from _pytest.fixtures import FixtureRequest  # noqa: F401

    from pytest_release.config import GateConfig
    from pytest_release.stage import StageRun


def gate_nodeid(gate: str) -> str:
    return f"gate:{gate}"


class GateNode(pytest.Collector):
    """Parent of the items a gate generates; node id ``gate:<name>``."""

    gate_name: str
    gate: GateConfig
    run: StageRun

    @classmethod
    def for_gate(
        cls, session: pytest.Session, gate_name: str, gate: GateConfig, run: StageRun
    ) -> GateNode:
        node = cls.from_parent(session, name=gate_nodeid(gate_name), nodeid=gate_nodeid(gate_name))
        node.gate_name = gate_name
        node.gate = gate
        node.run = run
        return node

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        generated = self.ihook.pytest_release_gate_items(gate_node=self)
        items: list[pytest.Item | pytest.Collector] = []
        for batch in generated:
            items.extend(batch or ())
        return items


class GateItem(pytest.Item):
    """Base for generated checks: ``repr_failure`` shows :class:`GateCheckFailed`'s text
    and ``reportinfo`` points at ``source_path:source_line`` (repo file, collection...).

    A subclass with ``gate_finalizer = True`` runs after every other item of its gate
    has finished, on any process (e.g. a coverage threshold over the whole gate); gates
    that depend on the gate also wait for it."""

    gate_finalizer: ClassVar[bool] = False

    source_path: Path | None = None
    source_line: int | None = None  # 1-based

    def __init__(
        self, *, source_path: Path | None = None, source_line: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path
        self.source_line = source_line

    def repr_failure(
        self,
        excinfo: ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, GateCheckFailed):
            return excinfo.value.message
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        path: Path | str = self.source_path or self.path
        line = self.source_line - 1 if self.source_line else None
        return path, line, self.name

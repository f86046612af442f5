"""The collector that holds a gate's generated items, and a base class for them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from pytest_release.config.location import gate_location
from pytest_release.errors import GateCheckFailed

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr
    from _pytest.fixtures import FixtureRequest  # noqa: F401

    from pytest_release.config.common_gate import CommonGateSettings
    from pytest_release.config.tables import GateConfig
    from pytest_release.ledger.stage_run import StageRun


def gate_nodeid(gate: str) -> str:
    return f"gate:{gate}"


class GateNode(pytest.Collector):
    """Parent of the items a gate generates; node id ``gate:<name>``."""

    gate_name: str
    run: StageRun

    @classmethod
    def for_gate(cls, session: pytest.Session, gate_name: str, run: StageRun) -> GateNode:
        node = cls.from_parent(session, name=gate_nodeid(gate_name), nodeid=gate_nodeid(gate_name))
        node.gate_name = gate_name
        node.run = run
        return node

    @property
    def gate(self) -> GateConfig:
        """The gate's table, read when a gate kind asks for it (a stage that runs only
        tests gates never reads one)."""
        return self.run.config.gates[self.gate_name]

    @property
    def common(self) -> CommonGateSettings:
        """What every gate has (kind, coverage, ...), read without the gate's table."""
        return self.run.config.common[self.gate_name]

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
        node = self.getparent(GateNode)
        if node is not None and (
            self.source_path is None
            or (self.source_line is None and self.source_path == Path(node.run.config.source))
        ):
            # No source of its own (a setup problem, a status item), or the configuration
            # file without a line: the gate's table (never ``file="."`` in JUnit).
            found, found_line = config_location(node.run, node.gate_name)
            if found is not None:
                path, line = found, None if found_line is None else found_line - 1
        return path, line, self.name


def config_location(run: StageRun, gate_name: str) -> tuple[Path | None, int | None]:
    """Where ``gate_name`` is configured: its ``[...gates.<name>]`` table, else the table of
    the stage that lists it, else ``[tool.pytest-release]`` (1-based line; the file alone
    when no line is found; ``(None, None)`` when there is no configuration file)."""
    try:
        version = Path(run.config.source).stat().st_mtime_ns
    except OSError:
        version = None
    key = (run.config.source, version, run.stage, gate_name)
    if key not in _LOCATIONS:
        _LOCATIONS[key] = _find_config_location(run, gate_name)
    return _LOCATIONS[key]


# Every closed item asks; the file is read once per (file version, stage, gate).
_LOCATIONS: dict[tuple[str, int | None, str, str], tuple[Path | None, int | None]] = {}


def _find_config_location(run: StageRun, gate_name: str) -> tuple[Path | None, int | None]:
    path, line = gate_location(run.config, gate_name)
    if path is None or line is not None:
        return path, line
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return path, None
    name = re.escape(run.stage)
    tables = (
        re.compile(rf'^\s*\[\s*(?:tool\.pytest-release\.)?stages\.(?:{name}|"{name}")\s*\]'),
        re.compile(r"^\s*\[\s*tool\.pytest-release\s*\]"),
    )
    for table in tables:
        for number, text in enumerate(lines, start=1):
            if table.match(text):
                return path, number
    return path, None


# The package's root (this module is in pytest_release/gating/): a skip raised anywhere in
# the plugin or a built-in gate is placed at its item's source instead.
_PLUGIN_DIR = Path(__file__).resolve().parents[1]


def skip_location(
    item: pytest.Item, gate_name: str, run: StageRun, raised_at: str, closed: bool
) -> tuple[str, int | None] | None:
    """Where pytest's short summary places a skip (``raised_at``: where ``pytest.skip``
    was raised).  An item of a closed gate: the gate's configuration; a skip raised
    inside this plugin (a generated item's verdict): the item; never the plugin.  None:
    leave pytest's location (a skip in the user's own code)."""
    if closed and gate_name:
        path, line = config_location(run, gate_name)
        if path is not None:
            return str(path), line
    elif not _inside(Path(raised_at), _PLUGIN_DIR):
        return None
    fspath, lineno, _ = item.reportinfo()
    return str(fspath), None if lineno is None else lineno + 1


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory)
    except OSError:
        return False

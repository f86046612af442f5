"""Where a gate's table is in the configuration file (read as text, no validation)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol


class _Configured(Protocol):
    @property
    def source(self) -> str: ...


def gate_location(config: _Configured, gate_name: str) -> tuple[Path | None, int | None]:
    """Where the gate's table is in the configuration file (for reports of items that
    have no source of their own): the file, and the line of ``[...gates.<name>]``, else of
    its first sub-table ``[...gates.<name>.<key>]`` (None when the gate only has built-in
    defaults there or the file cannot be read)."""
    path = Path(config.source)
    if not path.is_file():
        return None, None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return path, None
    name = re.escape(gate_name)
    table = re.compile(rf'^\s*\[\s*(?:tool\.pytest-release\.)?gates\.(?:{name}|"{name}")\s*\]')
    sub_table = re.compile(rf'^\s*\[\s*(?:tool\.pytest-release\.)?gates\.(?:{name}|"{name}")\.')
    first_sub: int | None = None
    for number, line in enumerate(lines, start=1):
        if table.match(line):
            return path, number
        if first_sub is None and sub_table.match(line):
            first_sub = number
    return path, first_sub

"""The configuration's TOML files: ``[tool.pytest-release]`` of a pyproject.toml or a
whole release file, read with clear errors, and layered (``--release-config`` repeated).

Validation is :mod:`.release`; this module imports no pydantic (a stage reading a
cached plan reads its files, :mod:`.plan_cache`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_release.errors import ReleaseConfigError


def merge_layers(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Layered configuration files: tables merge recursively, a later file's value
    replaces an earlier one's (lists included); a table whose ``type`` a later file
    changes is replaced whole (e.g. a profile switching the platform)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    return merged


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in top.items():
        below = result.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            # A table that switches its ``type`` (a platform profile) replaces the table.
            switched = "type" in value and "type" in below and value["type"] != below["type"]
            result[key] = dict(value) if switched else deep_merge(below, value)
        else:
            result[key] = value
    return result


def read_table(path: Path, *, pyproject: bool) -> dict[str, Any]:
    """The ``[tool.pytest-release]`` table of a pyproject.toml, or a whole release TOML."""
    if path.is_dir():
        raise ReleaseConfigError(
            f"release configuration {path} is a directory, not a file; pass the path of a "
            f"TOML file to --release-config, e.g. {path / 'release.toml'}"
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReleaseConfigError(
            f"release configuration file {path} does not exist; "
            "pass an existing TOML file to --release-config"
        ) from None
    except OSError as exc:
        raise ReleaseConfigError(
            f"cannot read the release configuration file {path}: {exc.strerror or exc}; "
            "fix its permissions or pass another TOML file to --release-config"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReleaseConfigError(
            f"release configuration file {path} is not UTF-8 text (byte "
            f"0x{raw[exc.start]:02x} at offset {exc.start}): it must be a TOML file saved as "
            "UTF-8; check that --release-config names the right file"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseConfigError(f"{path} is not valid TOML: {exc}") from None
    if not pyproject:
        # A dedicated file may hold the table at top level or under [tool.pytest-release].
        tool = data.get("tool", {})
        if isinstance(tool, dict) and "pytest-release" in tool and len(data) == 1:
            data = tool["pytest-release"]
        if not data:
            # Named on purpose and empty (/dev/null, a file not yet written, an unset CI
            # variable's path): running on the built-in defaults would be a different run.
            raise ReleaseConfigError(
                f"release configuration file {path} is empty (no settings in it); pass the "
                "TOML file with your stages and gates to --release-config, or leave the "
                "option out to use [tool.pytest-release] in pyproject.toml"
            )
        return data
    table = data.get("tool", {}).get("pytest-release", {})
    if not isinstance(table, dict):
        raise ReleaseConfigError(f"{path}: [tool.pytest-release] must be a table")
    return table

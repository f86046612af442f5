"""What a gate kind that runs one external tool (newman, Locust) needs to start it, shared
by the kinds: where a configured path points, which executable runs, and the command-line
flags the gate sets itself (refused in ``args`` with the key to use instead).  No pytest
here: the gates' configuration models call it while a configuration is validated."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path


def resolve_path(rootdir: Path, value: str) -> Path:
    """A configured path: ``~`` expanded, relative to the rootdir."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else rootdir / path


def executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def configured_executable(
    configured: str, rootdir: Path, tool: str, key: str, gate: str, hint: str
) -> str:
    """The executable the gate's ``key`` names: a path (relative to the rootdir) or a
    name on PATH; a :class:`LookupError` message saying what is wrong and ``hint``."""
    if "/" in configured or os.sep in configured:
        path = resolve_path(rootdir, configured)
        if executable(path):
            return str(path)
        state = "is not executable" if path.is_file() else "does not exist"
        raise LookupError(
            f"{tool} is not installed: {key} = {configured!r} (gate {gate!r}) {state} at "
            f"{path}; {hint}"
        )
    found = shutil.which(configured)
    if found:
        return found
    raise LookupError(
        f"{tool} is not installed: {key} = {configured!r} (gate {gate!r}) is not on PATH; {hint}"
    )


def installed_executable(
    configured: str | None, rootdir: Path, tool: str, key: str, gate: str, hint: str, usual: Path
) -> str:
    """The configured executable (:func:`configured_executable`), else the one at
    ``usual`` (where the tool's installer puts it), else the program ``key`` (the gate's
    key for it is named after it) on PATH; a :class:`LookupError` message saying where
    it looked and ``hint``."""
    if configured is not None:
        return configured_executable(configured, rootdir, tool, key, gate, hint)
    if executable(usual):
        return str(usual)
    found = shutil.which(key)
    if found:
        return found
    raise LookupError(
        f"{tool} is not installed: looked for {usual} and for {key!r} on PATH; {hint}"
    )


def refuse_empty_paths(config: object, keys: Iterable[str]) -> None:
    """A :class:`ValueError` for the first of the path ``keys`` of ``config`` that is set
    but empty."""
    for key in keys:
        value = getattr(config, key)
        if value is not None and not value.strip():
            raise ValueError(f"{key} is empty; remove the key or name a file")


def refuse_reserved_flags(
    tool: str, args: Iterable[str], reserved: Mapping[str, str], prefixes: Mapping[str, str]
) -> None:
    """A :class:`ValueError` for the first of ``args`` the gate sets itself: a flag of
    ``reserved`` or one starting with a key of ``prefixes``; their value is the key to
    use instead, or a reason in parentheses."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        instead = reserved.get(flag)
        if instead is None:
            instead = next((why for start, why in prefixes.items() if flag.startswith(start)), None)
        if instead is not None:
            use = instead if instead.startswith("(") else f"use the key '{instead}' instead"
            raise ValueError(f"{tool} flag {flag!r} is set by the gate; {use}")

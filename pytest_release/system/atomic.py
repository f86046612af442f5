"""Files replaced atomically: written to a temp file beside the target, flushed and
fsynced, then renamed over it, so a reader (another process, the next stage, a crash
recovery) sees the old or the new content, never a half-written one.  The target's
permission bits are kept when it exists."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["read_json", "write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            # mkstemp creates 0600; a new file gets the usual umask-based mode instead.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Mapping[str, Any] | list[Any], **dump: Any) -> None:
    write_text_atomic(path, json.dumps(data, **({"indent": 2, "sort_keys": True} | dump)))


def read_json(path: Path, error: Callable[[str], Exception] = ValueError) -> dict[str, Any] | None:
    """The JSON object in ``path``, None when the file does not exist; ``error`` (the
    caller's own kind, e.g. PlatformError) when it holds no JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path} is not valid JSON ({exc}); it is state written by pytest-release: "
            "remove it only after stopping the processes it lists"
        ) from None
    if not isinstance(data, dict):
        raise error(f"{path} does not hold a JSON object")
    return data

"""The lint gate's result cache: a tool's result is reused while its inputs (the target
files, its configuration files, the installed distributions, its command) are unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.gates.lint.model import ToolResult
from pytest_release.system.atomic import write_json_atomic

if TYPE_CHECKING:
    from pytest_release.gates.lint.tools import ToolPlan

CACHE_FORMAT = "pytest-release-lint-1"
CACHE_DIR = Path(".pytest-release") / "cache" / "lint"
SOURCE_SUFFIXES = frozenset({".py", ".pyi", ".ipynb", ".pyx"})
CONFIG_NAMES = frozenset(
    {
        "pyproject.toml",
        "setup.cfg",
        "tox.ini",
        ".flake8",
        "ruff.toml",
        ".ruff.toml",
        "mypy.ini",
        ".mypy.ini",
        ".isort.cfg",
        ".editorconfig",
        ".bandit",
        "py.typed",
        "requirements.txt",
    }
)
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


# -- cache ---------------------------------------------------------------------------------


def _walk_files(root: Path, target: str) -> Iterator[Path]:
    start = root / target
    if start.is_file():
        yield start
        return
    for dirpath, dirnames, filenames in os.walk(start):
        if "pyvenv.cfg" in filenames and Path(dirpath) != root:
            dirnames[:] = []
            continue
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            if name in CONFIG_NAMES or os.path.splitext(name)[1] in SOURCE_SUFFIXES:
                yield Path(dirpath) / name


def files_digest(root: Path, targets: Iterable[str], extra_files: Iterable[str] = ()) -> str:
    """One hash over the content of the files a tool's result depends on."""
    paths: set[Path] = {root / name for name in CONFIG_NAMES if (root / name).is_file()}
    paths.update(root / name for name in extra_files)
    for target in targets or (".",):
        paths.update(_walk_files(root, target))
    digest = hashlib.sha256()
    for path in sorted(paths):
        try:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            content = f"unreadable: {exc.__class__.__name__}"
        rel = os.path.relpath(path, root)
        digest.update(f"{rel}\0{content}\n".encode())
    return digest.hexdigest()


def installed_distributions() -> str:
    """Hash of the ``*.dist-info`` / ``*.egg-info`` names (name and version) on
    ``sys.path``: a changed plugin or stub package invalidates cached results."""
    names: list[str] = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names.extend(
                    e.name for e in it if e.name.endswith((".dist-info", ".egg-info", ".pth"))
                )
        except OSError:
            continue
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def cache_key(
    plan: ToolPlan, version: str, files: str, distributions: str, environ: Mapping[str, str]
) -> str:
    env = sorted(
        (k, v)
        for k, v in environ.items()
        if plan.spec.env_prefixes and k.startswith(plan.spec.env_prefixes)
    )
    material = {
        "format": CACHE_FORMAT,
        "tool": plan.spec.name,
        "argv": plan.argv,
        "version": version,
        "env": env,
        "files": files,
        "distributions": distributions,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class LintCache:
    """One JSON file per gate and tool under ``<rootdir>/.pytest-release/cache/lint``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, gate_name: str, tool: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", gate_name)
        return self.directory / f"{safe}--{tool}.json"

    def get(self, gate_name: str, tool: str, key: str) -> ToolResult | None:
        try:
            data = json.loads(self._file(gate_name, tool).read_text(encoding="utf-8"))
            if data.get("key") != key:
                return None
            return replace(ToolResult.from_json(data["result"]), cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, gate_name: str, tool: str, key: str, result: ToolResult) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by pytest-release\n*\n", encoding="utf-8")
            write_json_atomic(self._file(gate_name, tool), {"key": key, "result": result.to_json()})
        except OSError:
            pass  # a read-only checkout still lints, just without a cache

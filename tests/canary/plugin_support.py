"""Plug-ins for the tests of the entry-point registry: a distribution written as pip
installs one (metadata, entry points, modules), and the registry reloaded with a
directory of plug-ins on ``sys.path``."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_release.canary.registry import registry


def distribution(
    site: Path, name: str, group: str, entry_point: str, modules: dict[str, str] | None = None
) -> Path:
    """``site`` holding the distribution ``name`` 0.1 as pip installs it: its metadata, the
    entry point ``entry_point`` (``name = module:attribute``) of ``group``, and the
    ``modules`` (module name -> source, dedented); returns ``site``."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry_point}\n")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


@contextmanager
def registered(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plug-ins of ``site`` importable here and the registry reloaded with them; on
    leaving, ``monkeypatch`` undone (``sys.path`` and whatever else it set) and the
    registry reloaded without them."""
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    try:
        yield site
    finally:
        monkeypatch.undo()
        registry.cache_clear()

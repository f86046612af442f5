"""The package's layout rules (docs/architecture.md): no import circle between modules, no
import against the layer order, the spine imports no gate kind and no part of the engine,
the canary engine imports no pytest, gate kinds with the same shape.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING`` (that
is where circles hide).  Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, so
an import of a module is an edge to its packages as well (except the importer's own
packages, which are initialised before it).  A module may be long when it is one concept.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_release"


def package(name: str) -> tuple[str, str]:
    """Patterns for package ``name`` and every module under it."""
    return (name, f"{name}.*")


# Top to bottom: a module may import modules of its own layer and of the layers below it,
# never of a layer above.  Gate kinds sit above the spine: they are built on its gate API
# (GateItem, the stage session), which reaches them only through hooks, never an import.
# The registry of built-in gate kinds (``pytest_release.gates`` itself: names and the
# tables' module paths, imported by name) is configuration.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "entry",
        (
            "pytest_release",
            "pytest_release.__main__",
            "pytest_release.plugin",
            "pytest_release.hookspecs",
            *package("pytest_release.cli"),
            *package("pytest_release.controllers"),
        ),
    ),
    ("gates", ("pytest_release.gates.*",)),
    (
        "spine",
        (
            *package("pytest_release.stage"),
            *package("pytest_release.gating"),
            *package("pytest_release.workflow"),
        ),
    ),
    ("engine", package("pytest_release.canary")),
    ("records", (*package("pytest_release.ledger"), *package("pytest_release.report"))),
    ("config", (*package("pytest_release.config"), "pytest_release.gates")),
    ("base", ("pytest_release.errors", *package("pytest_release.system"))),
)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, name: str) -> set[str]:
    """Every module name ``path`` imports, wherever the import statement stands
    (relative imports resolved; ``from m import x`` gives ``m.x`` and ``m``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = own_package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules_of(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in root.rglob("*.py")}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package under ``root`` it imports (and the packages
    whose ``__init__`` that runs)."""
    modules = modules_of(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for target in imported_names(path, name):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            while target:
                if not (name == target or name.startswith(f"{target}.")):
                    edges.add(target)
                target = target.rpartition(".")[0]
        graph[name] = edges
    return graph


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def layer_of(name: str, layers: Sequence[tuple[str, Sequence[str]]]) -> int | None:
    matches = [
        i
        for i, (_, patterns) in enumerate(layers)
        for pattern in patterns
        if fnmatch.fnmatchcase(name, pattern)
    ]
    return matches[-1] if matches else None


def upward_imports(
    graph: Mapping[str, Iterable[str]], layers: Sequence[tuple[str, Sequence[str]]]
) -> list[str]:
    """Imports of a module from a layer above its own, as 'a (layer) -> b (layer)'."""
    found = []
    for name in sorted(graph):
        own = layer_of(name, layers)
        for target in sorted(graph[name]):
            theirs = layer_of(target, layers)
            if own is not None and theirs is not None and theirs < own:
                found.append(f"{name} ({layers[own][0]}) -> {target} ({layers[theirs][0]})")
    return found


GRAPH = import_graph(PACKAGE)


def test_there_is_no_import_circle() -> None:
    assert circles(GRAPH) == []


def test_every_module_has_one_layer_and_no_import_runs_up() -> None:
    assert [name for name in GRAPH if layer_of(name, LAYERS) is None] == []
    assert upward_imports(GRAPH, LAYERS) == []


def test_the_spine_imports_no_gate_kind_and_no_part_of_the_engine() -> None:
    spine = [n for n in GRAPH if LAYERS[layer_of(n, LAYERS) or 0][0] == "spine"]
    assert len(spine) > 20
    offenders = {
        name: sorted(
            m
            for m in GRAPH[name]
            if m.startswith(("pytest_release.gates.", "pytest_release.canary"))
        )
        for name in spine
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_canary_engine_imports_no_pytest() -> None:
    engine = {n: p for n, p in modules_of(PACKAGE).items() if n.startswith("pytest_release.canary")}
    assert len(engine) > 20
    offenders = [
        name
        for name, path in engine.items()
        if any(m.split(".")[0] in ("pytest", "_pytest") for m in imported_names(path, name))
    ]
    assert offenders == []


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


PLANTED_LAYERS = (("top", package("pkg.top")), ("low", package("pkg.low")))


def test_the_checker_finds_a_circle_hidden_in_a_function_and_under_type_checking(
    tmp_path: Path,
) -> None:
    clean = {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg import b\n",
        "pkg/b.py": "import json\n",
        "pkg/c.py": "from pkg.a import f\n",
    }
    assert circles(import_graph(write_tree(tmp_path / "clean", clean))) == []
    planted = {
        **clean,
        "pkg/b.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.c import f\n",
    }
    assert circles(import_graph(write_tree(tmp_path / "planted", planted))) == [
        ["pkg.a", "pkg.b", "pkg.c"]
    ]


def test_the_checker_finds_a_circle_through_a_package_init(tmp_path: Path) -> None:
    # pkg.low.x imports pkg.sub.y, whose package's __init__ imports pkg.low.x back.
    tree = {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/x.py": "from pkg.sub.y import Y\n",
        "pkg/sub/__init__.py": "from .z import Z\n",
        "pkg/sub/y.py": "Y = 1\n",
        "pkg/sub/z.py": "from ..low import x\nZ = 2\n",
    }
    found = circles(import_graph(write_tree(tmp_path, tree)))
    assert found == [["pkg.low.x", "pkg.sub", "pkg.sub.z"]]


def test_the_checker_finds_an_upward_import(tmp_path: Path) -> None:
    clean = {
        "pkg/__init__.py": "",
        "pkg/top/__init__.py": "",
        "pkg/top/entry.py": "from pkg.low.record import Record\n",
        "pkg/low/__init__.py": "",
        "pkg/low/record.py": "class Record:\n    pass\n",
    }
    graph = import_graph(write_tree(tmp_path / "clean", clean))
    assert upward_imports(graph, PLANTED_LAYERS) == []
    planted = {
        **clean,
        "pkg/low/record.py": "class Record:\n    def entry(self):\n"
        "        from pkg.top import entry\n        return entry\n",
    }
    graph = import_graph(write_tree(tmp_path / "planted", planted))
    assert upward_imports(graph, PLANTED_LAYERS) == [
        "pkg.low.record (low) -> pkg.top (top)",
        "pkg.low.record (low) -> pkg.top.entry (top)",
    ]


def test_every_gate_kind_has_the_same_shape() -> None:
    from pytest_release.gates import BUILTIN_GATE_PLUGINS

    for plugin in BUILTIN_GATE_PLUGINS:
        folder = PACKAGE.parent / Path(*plugin.split(".")[:-1])
        assert {"__init__.py", "plugin.py", "config.py"} <= {p.name for p in folder.iterdir()}, (
            folder
        )
    kinds = {p.parent.name for p in (PACKAGE / "gates").glob("*/plugin.py")}
    assert kinds == {p.split(".")[2] for p in BUILTIN_GATE_PLUGINS}

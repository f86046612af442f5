"""The package's layout rules (docs/architecture.md): no import circle, the spine imports
no gate and no platform, the canary engine imports no pytest, no module over ~500 lines
without a reason at its top, gate kinds with the same shape."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_release"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not inside functions, not only for type
    checking)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {
    name: {m for m in module_level_imports(path) if m in MODULES and m != name}
    for name, path in MODULES.items()
}


def test_there_is_no_import_circle() -> None:
    # A package's own __init__ is imported before its modules; an edge into a package
    # means its __init__.  Depth-first search for a back edge.
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            dfs(name)
    assert circles == []


def test_the_spine_imports_no_gate_and_no_platform() -> None:
    spine = [n for n in MODULES if n.count(".") == 1 and n != "pytest_release.plugin"]
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
    # A platform's plugin module is its pytest face (ledger store, end-of-stage check).
    engine = [
        n for n in MODULES if n.startswith("pytest_release.canary") and not n.endswith(".plugin")
    ]
    assert len(engine) > 20
    offenders = [n for n in engine if "pytest" in module_level_imports(MODULES[n])]
    assert offenders == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_long_module_says_why(name: str) -> None:
    text = MODULES[name].read_text(encoding="utf-8")
    if text.count("\n") <= 520:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert "over 500 lines on purpose" in docstring.lower(), (
        f"{name} has {text.count(chr(10))} lines: split it, or say at its top why not"
    )


def test_every_gate_kind_has_the_same_shape() -> None:
    from pytest_release.gates import BUILTIN_GATE_PLUGINS

    for plugin in BUILTIN_GATE_PLUGINS:
        folder = PACKAGE.parent / Path(*plugin.split(".")[:-1])
        assert {"__init__.py", "plugin.py", "config.py"} <= {p.name for p in folder.iterdir()}, (
            folder
        )
    kinds = {p.parent.name for p in (PACKAGE / "gates").glob("*/plugin.py")}
    assert kinds == {p.split(".")[2] for p in BUILTIN_GATE_PLUGINS}

"""A third-party gate kind for the spine's tests: ``file-check``, whose items are the files
its table requires (a conftest defines its table model and its item)."""

from __future__ import annotations

import textwrap

# The hooks that register the kind and generate its items, from the conftest's
# ``FileCheckGate`` (the table) and ``FileExists`` (one item a required file).
FILE_CHECK_HOOKS = """
def pytest_release_gate_kinds():
    return {"file-check": FileCheckGate}

def pytest_release_gate_items(gate_node):
    if gate_node.gate.kind != "file-check":
        return None
    return [FileExists.from_parent(gate_node, name=n)
            for n in gate_node.gate.required]
"""


def file_check_conftest(models: str) -> str:
    """A conftest.py: ``models`` (``FileCheckGate`` and ``FileExists``, any indentation),
    then the hooks of the ``file-check`` kind."""
    return textwrap.dedent(models) + FILE_CHECK_HOOKS

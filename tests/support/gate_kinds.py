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


# A pydantic table and an item that says which process ran it ("none" without xdist).
FILE_CHECK_MODELS = """
from pydantic import Field
from pytest_release import GateCheckFailed, GateConfig, GateItem

class FileCheckGate(GateConfig):
    required: tuple[str, ...] = Field(default=())

class FileExists(GateItem):
    def runtest(self):
        worker = getattr(self.config, "workerinput", {}).get("workerid", "none")
        if not (self.config.rootpath / self.name).exists():
            raise GateCheckFailed(f"{self.name} is missing (on {worker})")
"""


def file_check_conftest(models: str = FILE_CHECK_MODELS) -> str:
    """A conftest.py: ``models`` (``FileCheckGate`` and ``FileExists``, any indentation),
    then the hooks of the ``file-check`` kind."""
    return textwrap.dedent(models) + FILE_CHECK_HOOKS

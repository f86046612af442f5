"""Small pipelines of plain test gates (no gate tool runs) that the spine's tests share,
written once."""

from __future__ import annotations

import json


def two_stages(unit_paths: str = "tests/*") -> str:
    """A ``unit`` gate of the tests under ``unit_paths``, run by stage ``one`` and again by
    stage ``two``, which requires ``one`` (for a test of what ``two`` is told)."""
    return f"""
[gates.unit]
paths = ["{unit_paths}"]
[stages.one]
gates = ["unit"]
requires = []
[stages.two]
gates = ["unit"]
requires = ["one"]
"""


TWO_STAGES = two_stages()

# One stage `ci` of a `unit` gate over tests/unit, and a passing test for it.
CI = """
[gates.unit]
paths = ["tests/unit/*"]
[stages.ci]
gates = ["unit"]
"""
UNIT_TEST = {"tests/unit/test_u.py": "def test_u(): pass\n"}


def local_process_canary(rollout: str, platform: str = "") -> str:
    """Stage ``canary-1`` with the rollout keys ``rollout``, its ``canary`` gate on a
    local-process platform whose command never serves (for what a stage refuses before it
    deploys), with the platform keys ``platform`` added."""
    return f"""
[stages.canary-1]
requires = []
rollout = {{ {rollout} }}
[gates.canary]
paths = []
[gates.canary.platform]
type = "local-process"
command = ["python3", "-c", "pass", "{{port}}"]
stable_image = "v1"
{platform}
"""


def stages_of_gates(gates: dict[str, str], stages: dict[str, list[str]]) -> str:
    """A gate of the tests under each path of ``gates`` (name -> paths pattern), then the
    ``stages`` (name -> its gates) in order, each requiring the one before it."""
    tables = [f'[gates.{name}]\npaths = ["{paths}"]\n' for name, paths in gates.items()]
    previous: list[str] = []
    for name, run in stages.items():
        tables.append(
            f"[stages.{name}]\ngates = {json.dumps(run)}\nrequires = {json.dumps(previous)}\n"
        )
        previous = [name]
    return "\n" + "".join(tables)

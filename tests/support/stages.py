"""Stage tables several test folders share (written once, checked against one shape)."""

from __future__ import annotations

from typing import Any


def bluegreen_stages(replicas: int, hold: str, interval: str, *, finish: bool = False) -> str:
    """``bluegreen-deploy`` (the idle colour held ``hold``, judged every ``interval``),
    then ``bluegreen-switch``, and with ``finish`` a ``bluegreen-finish`` that promotes."""
    deploy = f'action = "bluegreen-deploy", replicas = {replicas}, hold = "{hold}"'
    toml = f"""
[stages.bluegreen-deploy]
gates = ["canary"]
requires = []
rollout = {{ {deploy}, interval = "{interval}" }}
[stages.bluegreen-switch]
gates = ["canary"]
requires = ["bluegreen-deploy"]
rollout = {{ action = "bluegreen-switch", replicas = {replicas}, hold = "0s" }}
"""
    if finish:
        toml += f"""[stages.bluegreen-finish]
gates = ["canary"]
requires = ["bluegreen-switch"]
rollout = {{ action = "promote", replicas = {replicas}, weight = 100, hold = "0s" }}
"""
    return toml


def canary_stages(rollout: str) -> str:
    """``canary-1`` (1 replica, 10 %) and ``canary-2`` (2, 50 %) with the rollout keys
    ``rollout``, then ``canary-3`` promoting to 3 replicas; for a TOML f-string."""
    return f"""[stages.canary-1]
requires = []
rollout = {{ {rollout}, replicas = 1, weight = 10 }}
[stages.canary-2]
rollout = {{ {rollout}, replicas = 2, weight = 50 }}
[stages.canary-3]
rollout = {{ action = "promote", replicas = 3, weight = 100, hold = "0s" }}"""


# The ledger after the blue/green round trip: release r1 deployed, switched, and switched
# back by the rollback stage; then r2 deployed, switched and finished.
BLUEGREEN_ROUND_TRIP = [
    ("bluegreen-deploy", "r1", "passed"),
    ("bluegreen-switch", "r1", "passed"),
    ("rollback", "r1", "passed"),
    ("bluegreen-deploy", "r2", "passed"),
    ("bluegreen-switch", "r2", "passed"),
    ("bluegreen-finish", "r2", "passed"),
]


def stage_release_outcomes(runs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(stage, release id, outcome) of each ledger run, in order."""
    return [(run["stage"], run["release_id"], run["outcome"]) for run in runs]

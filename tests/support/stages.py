"""Stage tables several test folders share (written once, checked against one shape)."""

from __future__ import annotations


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

"""HAProxy's state as the router keeps it: its servers read back (``show servers
state``), the per-server weights that give each group its percentage, and the router's
state file (port, socket, process, slot table, split)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_release.system.processes import ProcessRef

MAX_WEIGHT = 256
# srv_admin_state bits that mean "in maintenance": forced, inherited, DNS, hostname (not
# 0x04, which only records that the config declared the server "disabled").
_MAINT_BITS = 0x01 | 0x02 | 0x20 | 0x40
_RUNNING = 2  # srv_op_state SRV_ST_RUNNING


@dataclass(frozen=True)
class ServerState:
    name: str
    addr: str
    port: int
    weight: int
    admin_state: int
    op_state: int

    @property
    def endpoint(self) -> str:
        return f"{self.addr}:{self.port}"

    @property
    def in_service(self) -> bool:
        return not self.admin_state & _MAINT_BITS and self.op_state == _RUNNING


def server_weights(stable: int, canary: int, n_stable: int, n_canary: int) -> tuple[int, int]:
    """Per-server HAProxy weights (stable, canary) giving each group its percentage.

    Exact when it fits HAProxy's 0..256 range, else the closest ratio that does."""
    if stable == 0:
        return 0, 1
    if canary == 0:
        return 1, 0
    g = math.gcd(stable, canary)
    ws, wc = (stable // g) * n_canary, (canary // g) * n_stable
    g = math.gcd(ws, wc)
    ws, wc = ws // g, wc // g
    if max(ws, wc) > MAX_WEIGHT:
        scale = MAX_WEIGHT / max(ws, wc)
        ws, wc = max(1, round(ws * scale)), max(1, round(wc * scale))
    return ws, wc


def percent(part: int, total: int) -> int:
    return 0 if total == 0 else math.floor(100 * part / total + 0.5)


@dataclass
class RouterState:
    port: int
    socket: str
    haproxy: ProcessRef | None = None
    slots: list[dict[str, str] | None] = field(default_factory=list)  # endpoint, group
    split: tuple[int, int] = (100, 0)

    def members(self, group: str) -> list[str]:
        return [s["endpoint"] for s in self.slots if s and s["group"] == group]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "pytest-release/haproxy-router",
            "port": self.port,
            "socket": self.socket,
            "haproxy": self.haproxy.to_json() if self.haproxy else None,
            "slots": self.slots,
            "split": list(self.split),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouterState:
        ref = data.get("haproxy")
        split = data.get("split", [100, 0])
        return cls(
            port=int(data["port"]),
            socket=str(data["socket"]),
            haproxy=ProcessRef.from_json(ref) if ref else None,
            slots=list(data.get("slots", [])),
            split=(int(split[0]), int(split[1])),
        )

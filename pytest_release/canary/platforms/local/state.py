"""The local platform's state, kept in ``<state_dir>/platform.json``: every replica (its
port, PID or container id, image, group) and what each group runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_release.canary.platform import Group
from pytest_release.system.processes import (
    ProcessRef,
)

HOST = "127.0.0.1"
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
SUPERVISOR_SCRIPT = Path(__file__).with_name("supervisor.py")


@dataclass(frozen=True)
class ReplicaSpec:
    name: str
    port: int
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None = None
    container_id: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "image": self.image,
            "argv": list(self.argv),
            "env": dict(self.env),
            "cwd": self.cwd,
            "container_id": self.container_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplicaSpec:
        return cls(
            name=str(data["name"]),
            port=int(data["port"]),
            image=str(data["image"]),
            argv=tuple(str(a) for a in data.get("argv", ())),
            env={str(k): str(v) for k, v in data.get("env", {}).items()},
            cwd=data.get("cwd"),
            container_id=data.get("container_id"),
        )


@dataclass(frozen=True)
class PlatformState:
    type: str
    serial: int = 0
    stable: tuple[ReplicaSpec, ...] = ()
    canary: tuple[ReplicaSpec, ...] = ()
    stable_image: str | None = None
    canary_image: str | None = None
    previous_image: str | None = None
    supervisor: ProcessRef | None = None

    def all(self) -> tuple[tuple[Group, ReplicaSpec], ...]:
        return tuple(("stable", r) for r in self.stable) + tuple(("canary", r) for r in self.canary)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "pytest-release/local-platform",
            "type": self.type,
            "serial": self.serial,
            "stable": [r.to_json() for r in self.stable],
            "canary": [r.to_json() for r in self.canary],
            "stable_image": self.stable_image,
            "canary_image": self.canary_image,
            "previous_image": self.previous_image,
            "supervisor": self.supervisor.to_json() if self.supervisor else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformState:
        sup = data.get("supervisor")
        return cls(
            type=str(data["type"]),
            serial=int(data.get("serial", 0)),
            stable=tuple(ReplicaSpec.from_json(r) for r in data.get("stable", ())),
            canary=tuple(ReplicaSpec.from_json(r) for r in data.get("canary", ())),
            stable_image=data.get("stable_image"),
            canary_image=data.get("canary_image"),
            previous_image=data.get("previous_image"),
            supervisor=ProcessRef.from_json(sup) if sup else None,
        )


@dataclass(frozen=True)
class Observed:
    running: bool
    restarts: int
    detail: str = ""

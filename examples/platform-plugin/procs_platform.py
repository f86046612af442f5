"""An example pytest-release platform plug-in: ``platform.type = "procs"``.

Every replica is a process started from ``platform.command`` (``{port}`` and ``{image}``
filled in) on 127.0.0.1; HAProxy (the built-in ``haproxy`` router) splits the traffic.
What it knows lives in ``<state_dir>/procs.json``, so the next stage (another pytest
session) finds the replicas again.  What makes it a platform:

* :class:`ProcsPlatformConfig`, its ``platform`` table (validated by pydantic, with
  the same kind of messages as the built-ins': key, value, what is allowed);
* :class:`ProcsPlatform`, the :class:`~pytest_release.canary.platform.Platform`
  protocol (status, deploy, promote, rollback, cleanup) with its capabilities (the
  defaults: it starts its main, the canary's processes become the main ones, every
  endpoint is reachable);
* :func:`build_rollout`, the platform and the HAProxy router handed to pytest-release's
  one :class:`~pytest_release.canary.rollout.Rollout`, so the order of steps that drops
  no request is pytest-release's, not this module's;
* :data:`PLATFORM`, what the entry point ``procs`` of ``pytest_release.platforms`` loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.canary.platform import (
    Group,
    PlatformCapabilities,
    PlatformStatus,
    PlatformTerms,
)
from pytest_release.canary.registry import PlatformPlugin
from pytest_release.canary.samples import ReplicaStatus
from pytest_release.errors import PlatformError

if TYPE_CHECKING:
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings

HOST = "127.0.0.1"


class ProcsPlatformConfig(BaseModel):
    """``[tool.pytest-release.gates.canary.platform]`` with ``type = "procs"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["procs"] = Field(description="Replicas are local processes.")
    command: tuple[str, ...] = Field(
        min_length=1, description="The replica command; placeholders {port} and {image}."
    )
    state_dir: str = Field(default=".pytest-release/procs", description="State (rootdir-relative).")
    stable_image: str | None = Field(default=None, description="Main's version on first use.")
    stable_replicas: int = Field(default=1, ge=1, le=8, description="Main's replicas on first use.")
    health_path: str = Field(default="/health", description="Answers 2xx when a replica is ready.")
    ready_timeout: float = Field(default=30.0, gt=0, description="Seconds to become ready.")

    @field_validator("command")
    @classmethod
    def _port_placeholder(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not any("{port}" in part for part in value):
            raise ValueError(
                f"the command {list(value)!r} never names {{port}}: every replica listens on "
                "its own port; add e.g. '--port', '{port}'"
            )
        return value

    def deployment_claims(self) -> tuple[Any, ...]:
        return ()  # nothing shared with another environment but its state_dir


@dataclass(frozen=True)
class Replica:
    name: str
    group: Group
    image: str
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass(frozen=True)
class State:
    replicas: tuple[Replica, ...] = ()
    previous_image: str | None = None
    serial: int = 0


class ProcsPlatform:
    """The :class:`~pytest_release.canary.platform.Platform` of ``type = "procs"``."""

    terms = PlatformTerms(main="main deployment", unit="process", listing="processes")
    capabilities = PlatformCapabilities()

    def __init__(self, config: ProcsPlatformConfig, rootdir: Path) -> None:
        self.config = config
        state_dir = Path(config.state_dir)
        self.state_dir = state_dir if state_dir.is_absolute() else rootdir / state_dir
        self.state_path = self.state_dir / "procs.json"
        self.name = f"procs ({self.state_dir})"

    # -- state -----------------------------------------------------------------------------
    def _load(self) -> State:
        if not self.state_path.exists():
            return State()
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        return State(
            replicas=tuple(Replica(**r) for r in data["replicas"]),
            previous_image=data["previous_image"],
            serial=data["serial"],
        )

    def _save(self, state: State) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "replicas": [r.__dict__ for r in state.replicas],
            "previous_image": state.previous_image,
            "serial": state.serial,
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.state_path)

    # -- processes -------------------------------------------------------------------------
    def _start(self, state: State, group: Group, image: str) -> State:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        argv = [part.format(port=port, image=image) for part in self.config.command]
        try:
            process = subprocess.Popen(
                argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            raise PlatformError(f"platform.command {argv!r} cannot start: {exc}") from None
        name = f"p{state.serial + 1}"
        replica = Replica(name, group, image, port, process.pid)
        return replace(state, replicas=(*state.replicas, replica), serial=state.serial + 1)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        except OSError:
            return False
        return stat[stat.rfind(")") + 2] not in "ZX"

    def _stop(self, replica: Replica) -> None:
        if self._alive(replica.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(replica.pid, signal.SIGTERM)  # its own session: group id = its PID
            deadline = time.monotonic() + 10
            while self._alive(replica.pid) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(replica.pid, os.WNOHANG)  # reap it when it is our child
                time.sleep(0.02)
            if self._alive(replica.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(replica.pid, signal.SIGKILL)

    def _ready(self, replica: Replica) -> bool:
        url = f"http://{replica.endpoint}{self.config.health_path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return 200 <= int(response.status) < 400
        except OSError:
            return False

    def _wait_ready(self, state: State, group: Group) -> None:
        deadline = time.monotonic() + self.config.ready_timeout
        waiting = [r for r in state.replicas if r.group == group]
        while waiting:
            waiting = [r for r in waiting if not self._ready(r)]
            if waiting and time.monotonic() > deadline:
                raise PlatformError(
                    f"{', '.join(f'{r.name} ({r.endpoint})' for r in waiting)} not ready "
                    f"{self.config.ready_timeout:g}s after the start (GET "
                    f"{self.config.health_path}): raise platform.ready_timeout or fix the "
                    "command"
                )
            time.sleep(0.1)

    # -- the Platform protocol -------------------------------------------------------------
    def status(self) -> PlatformStatus:
        state = self._load()
        now = time.time()
        replicas = []
        for r in state.replicas:
            running = self._alive(r.pid)
            replicas.append(
                ReplicaStatus(
                    now,
                    r.name,
                    r.group,
                    r.image,
                    running,
                    running and self._ready(r),
                    0,
                    r.endpoint,
                )
            )
        images = {
            g: next((r.image for r in state.replicas if r.group == g), None)
            for g in ("stable", "canary")
        }
        return PlatformStatus(
            now, tuple(replicas), images["stable"], images["canary"], state.previous_image
        )

    def deploy_stable(self, image: str, replicas: int) -> PlatformStatus:
        state = self._load()
        for _ in range(replicas):
            state = self._start(state, "stable", image)
            self._save(state)
        self._wait_ready(state, "stable")
        return self.status()

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        state = self._load()
        canary = [r for r in state.replicas if r.group == "canary"]
        if canary and canary[0].image != image:
            raise PlatformError(
                f"a canary of {canary[0].image!r} is deployed, not {image!r}; roll it back "
                "first (pytest --stage=rollback)"
            )
        going = canary[replicas:]  # fewer replicas: the rollout drained these already
        for r in going:
            self._stop(r)
        state = replace(state, replicas=tuple(r for r in state.replicas if r not in going))
        kept = sum(1 for r in state.replicas if r.group == "canary")
        for _ in range(replicas - kept):
            state = self._start(state, "canary", image)
            self._save(state)
        self._save(state)
        self._wait_ready(state, "canary")
        return self.status()

    def promote(self, *, record_previous: bool = True) -> PlatformStatus:
        state = self._load()
        old = [r for r in state.replicas if r.group == "stable"]
        for r in old:
            self._stop(r)
        previous = old[0].image if old and record_previous else None
        promoted = tuple(replace(r, group="stable") for r in state.replicas if r.group == "canary")
        self._save(replace(state, replicas=promoted, previous_image=previous))
        return self.status()

    def rollback(self) -> PlatformStatus:
        state = self._load()
        for r in state.replicas:
            if r.group == "canary":
                self._stop(r)
        self._save(replace(state, replicas=tuple(r for r in state.replicas if r.group == "stable")))
        return self.status()

    def cleanup(self) -> None:
        for r in self._load().replicas:
            self._stop(r)
        self.state_path.unlink(missing_ok=True)


def build_rollout(settings: CanarySettings, rootdir: Path) -> Rollout:
    """The procs platform behind pytest-release's HAProxy router, driven by
    pytest-release's rollout."""
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.canary.routers.haproxy.router import HAProxyRouter

    config = settings.platform
    assert isinstance(config, ProcsPlatformConfig)  # the registry validated the table
    assert isinstance(settings.router, HAProxyConfig)  # PLATFORM.routers
    platform = ProcsPlatform(config, rootdir)
    router = HAProxyRouter(settings.router, platform.state_dir)
    return Rollout(
        platform, router, stable_image=config.stable_image, stable_replicas=config.stable_replicas
    )


PLATFORM = PlatformPlugin(
    config=ProcsPlatformConfig,
    build_rollout="procs_platform:build_rollout",
    routers=("haproxy",),
    router_hint="leave the router table out (HAProxy, the default) or set router.type = 'haproxy'",
    summary="local processes (example plug-in)",
)

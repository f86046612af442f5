"""The local platform: stable and canary replicas on 127.0.0.1, as processes or containers.

* ``local-process``: each replica is a process started from a command template by a
  supervisor daemon (:mod:`pytest_release.canary.platforms.local.supervisor`) that restarts dead
  replicas and counts the restarts.
* ``local-docker``: each replica is a container (host networking, ``init=True``,
  restart policy ``always``); restarts are Docker's ``RestartCount``.

Every replica gets its own port (``PORT`` in its environment).  The platform state
(replicas, ports, PIDs or container ids, images, the previous main image) lives in
``<state_dir>/platform.json``, written atomically under a file lock, so replicas outlive
the pytest session and the next stage re-attaches to them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from filelock import FileLock

from pytest_release.canary.platform import (
    Group,
    PlatformCapabilities,
    PlatformStatus,
    PlatformTerms,
)
from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.runtimes import (
    DockerRuntime,
    ProcessRuntime,
    Runtime,
    probe_health,
    render_template,
)
from pytest_release.canary.platforms.local.state import (
    BASE_ENV,
    HOST,
    Observed,
    PlatformState,
    ReplicaSpec,
)
from pytest_release.canary.samples import ReplicaStatus
from pytest_release.errors import PlatformError
from pytest_release.system.processes import (
    free_port,
    read_json,
    write_json_atomic,
)


class LocalPlatform:
    """:class:`~pytest_release.canary.platform.Platform` on this machine."""

    terms = PlatformTerms()
    # Starts its main; the canary's replicas become the main ones; every endpoint is on
    # 127.0.0.1.
    capabilities = PlatformCapabilities()

    def __init__(self, config: LocalPlatformConfig, rootdir: Path) -> None:
        self.config = config
        self.rootdir = rootdir
        state_dir = Path(config.state_dir)
        self.state_dir = state_dir if state_dir.is_absolute() else rootdir / state_dir
        self.state_path = self.state_dir / "platform.json"
        self.name = f"local ({config.type}, {self.state_dir})"
        self._lock = FileLock(str(self.state_dir / "platform.lock"))
        label = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:10]
        self.runtime: Runtime = (
            ProcessRuntime(self.state_dir / "supervisor", config.stop_timeout)
            if config.type == "local-process"
            else DockerRuntime(label, config.stop_timeout)
        )

    # -- state ---------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            yield

    def load(self) -> PlatformState:
        data = read_json(self.state_path, PlatformError)
        if data is None:
            return PlatformState(type=self.config.type)
        state = PlatformState.from_json(data)
        if state.type != self.config.type:
            raise PlatformError(
                f"{self.state_path} belongs to a {state.type!r} platform but platform.type is "
                f"{self.config.type!r}; roll back and clean up the old one first, or use "
                "another platform.state_dir"
            )
        return state

    def _save(self, state: PlatformState) -> None:
        write_json_atomic(self.state_path, state.to_json())

    def _apply(self, state: PlatformState, stopping: Sequence[ReplicaSpec]) -> PlatformState:
        """``state`` made real by the runtime, ``stopping`` stopped; the state file is
        written with the wanted state before the runtime acts and the applied one after."""
        self._save(state)
        state = self.runtime.apply(state, stopping)
        self._save(state)
        return state

    def _new_replica(self, state: PlatformState, image: str) -> tuple[PlatformState, ReplicaSpec]:
        serial = state.serial + 1
        name = f"r{serial}"
        taken = {r.port for _, r in state.all()}
        port = free_port(HOST)
        while port in taken:
            port = free_port(HOST)
        values = {"port": str(port), "image": image, "replica": name}
        env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        if self.config.type == "local-docker":
            env = {}
        env.update({"PORT": str(port), "RELEASE_IMAGE": image, "RELEASE_REPLICA": name})
        for key, value in {**self.config.env, **self.config.image_env.get(image, {})}.items():
            env[key] = render_template(value, values)
        argv = tuple(render_template(part, values) for part in self.config.command)
        cwd: str | None = None
        if self.config.type == "local-process":
            path = Path(self.config.cwd) if self.config.cwd else self.rootdir
            cwd = str(path if path.is_absolute() else self.rootdir / path)
        spec = ReplicaSpec(name=name, port=port, image=image, argv=argv, env=env, cwd=cwd)
        return replace(state, serial=serial), spec

    # -- observation ---------------------------------------------------------------------
    def _status_of(self, state: PlatformState) -> PlatformStatus:
        observed = self.runtime.observe(state) if state.all() else {}
        now = time.time()
        replicas = []
        for group, spec in state.all():
            obs = observed.get(spec.name, Observed(False, 0))
            ready = obs.running and probe_health(spec.endpoint, self.config.health_path, 0.5)[0]
            replicas.append(
                ReplicaStatus(
                    timestamp=now,
                    name=spec.name,
                    version=group,
                    image=spec.image,
                    running=obs.running,
                    ready=ready,
                    restarts=obs.restarts,
                    endpoint=spec.endpoint,
                )
            )
        return PlatformStatus(
            timestamp=now,
            replicas=tuple(replicas),
            stable_image=state.stable_image,
            canary_image=state.canary_image,
            previous_image=state.previous_image,
        )

    def status(self) -> PlatformStatus:
        return self._status_of(self.load())

    def _wait_ready(self, state: PlatformState, group: Group) -> PlatformStatus:
        """Wait until every replica is ready (``group``'s new ones, and any other that a
        re-attached supervisor had to start again)."""
        deadline = time.monotonic() + self.config.ready_timeout
        while True:
            status = self._status_of(state)
            pending = status.not_ready(group) + status.not_ready(
                "canary" if group == "stable" else "stable"
            )
            if not pending:
                return status
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        observed = self.runtime.observe(state)
        specs = {spec.name: spec for _, spec in state.all()}
        kinds = sorted({r.version for r in pending}, key=lambda v: v != group)
        lines = [
            f"{len(pending)} {'/'.join(kinds)} replica(s) not ready after "
            f"{self.config.ready_timeout:g}s ({self.config.health_path} must answer 2xx/3xx):"
        ]
        for r in pending:
            obs = observed.get(r.name, Observed(False, 0))
            health = probe_health(r.endpoint, self.config.health_path)[1] if obs.running else ""
            what = "running" if obs.running else f"not running ({obs.detail or 'unknown'})"
            lines.append(
                f"  {r.name} {r.image} on {r.endpoint}: {what}, {r.restarts} restart(s) {health}"
            )
            log = self.runtime.logs(state, specs[r.name])
            if log:
                lines.append(
                    "    last output:\n" + "\n".join("      " + ln for ln in log.splitlines())
                )
        raise PlatformError("\n".join(lines))

    # -- operations ----------------------------------------------------------------------
    def deploy_stable(self, image: str, replicas: int) -> PlatformStatus:
        with self.locked():
            state = self.runtime.prepare(self.load())
            self._save(state)
            if state.stable:
                raise PlatformError(
                    f"a main deployment already runs ({state.stable_image}, "
                    f"{len(state.stable)} replica(s)); update it with a canary and promote"
                )
            specs = []
            for _ in range(replicas):
                state, spec = self._new_replica(state, image)
                specs.append(spec)
            state = replace(state, stable=tuple(specs), stable_image=image)
            state = self._apply(state, ())
            return self._wait_ready(state, "stable")

    def deploy_canary(self, image: str, replicas: int) -> PlatformStatus:
        if replicas < 1:
            raise PlatformError(f"a canary needs at least 1 replica, got {replicas}")
        with self.locked():
            state = self.runtime.prepare(self.load())
            self._save(state)
            if state.canary and state.canary_image != image:
                raise PlatformError(
                    f"a canary of {state.canary_image!r} is deployed, not {image!r}; roll it "
                    "back first (pytest --stage=rollback)"
                )
            keep = state.canary[:replicas]
            stopping = state.canary[replicas:]
            specs = list(keep)
            for _ in range(replicas - len(keep)):
                state, spec = self._new_replica(state, image)
                specs.append(spec)
            state = replace(state, canary=tuple(specs), canary_image=image)
            state = self._apply(state, stopping)
            return self._wait_ready(state, "canary")

    def promote(self, *, record_previous: bool = True) -> PlatformStatus:
        with self.locked():
            state = self.runtime.prepare(self.load())
            if not state.canary:
                raise PlatformError("there is no canary to promote; deploy one first")
            old = state.stable
            previous = state.stable_image if record_previous else None
            state = replace(
                state,
                stable=state.canary,
                stable_image=state.canary_image,
                canary=(),
                canary_image=None,
                previous_image=previous,
            )
            state = self._apply(state, old)
            return self._status_of(state)

    def rollback(self) -> PlatformStatus:
        with self.locked():
            state = self.runtime.prepare(self.load())
            stopping = state.canary
            state = replace(state, canary=(), canary_image=None)
            state = self._apply(state, stopping)
            return self._status_of(state)

    def cleanup(self) -> None:
        with self.locked():
            try:
                state = self.load()
            except PlatformError:
                return
            self.runtime.shutdown(state)
            self.state_path.unlink(missing_ok=True)

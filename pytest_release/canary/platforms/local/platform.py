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
import http.client
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from pytest_release.canary.platform import Group, PlatformStatus
from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.samples import ReplicaStatus
from pytest_release.errors import PlatformError
from pytest_release.processes import (
    ProcessRef,
    free_port,
    read_json,
    terminate,
    write_json_atomic,
)

HOST = "127.0.0.1"
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
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


class _Runtime(Protocol):
    def prepare(self, state: PlatformState) -> PlatformState: ...
    def apply(self, state: PlatformState, stopping: Sequence[ReplicaSpec]) -> PlatformState: ...
    def observe(self, state: PlatformState) -> dict[str, Observed]: ...
    def logs(self, state: PlatformState, replica: ReplicaSpec) -> str: ...
    def shutdown(self, state: PlatformState) -> None: ...


def probe_health(endpoint: str, path: str, timeout: float = 1.0) -> tuple[bool, str]:
    host, _, port = endpoint.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        ok = 200 <= response.status < 400
        return ok, f"GET {path} -> {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET {path} -> {type(exc).__name__}: {exc}"
    finally:
        conn.close()


class ProcessRuntime:
    """Replicas as processes under the supervisor daemon."""

    def __init__(self, directory: Path, stop_timeout: float) -> None:
        self.dir = directory
        self.desired_path = directory / "desired.json"
        self.status_path = directory / "status.json"
        self.stop_timeout = stop_timeout

    def _status(self) -> dict[str, Any]:
        try:
            return read_json(self.status_path) or {}
        except ValueError:
            return {}

    def _kill_orphans(self) -> None:
        # A supervisor that died (SIGKILL, reboot of the daemon) may leave replicas
        # behind; they hold the ports, so end them (by PID and start time) first.
        for info in self._status().get("replicas", {}).values():
            if info.get("pid"):
                terminate(ProcessRef(int(info["pid"]), info.get("start_time")), self.stop_timeout)

    def prepare(self, state: PlatformState) -> PlatformState:
        if state.supervisor is not None and state.supervisor.alive():
            return state
        self._kill_orphans()
        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.dir / "supervisor.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ]
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, str(SUPERVISOR_SCRIPT), str(self.dir)],
                {k: os.environ[k] for k in _BASE_ENV if k in os.environ},
                file_actions=actions,
                setsid=True,
            )
        finally:
            os.close(fd)
        ref = ProcessRef.of(pid)
        state = replace(state, supervisor=ref)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            sup = self._status().get("supervisor") or {}
            if sup.get("pid") == pid:
                return state
            if not ref.alive():
                break
            time.sleep(0.02)
        raise PlatformError(
            f"the replica supervisor (pid {pid}) did not start; see {log}:\n"
            + _tail(log.read_text(encoding="utf-8", errors="replace"))
        )

    def apply(self, state: PlatformState, stopping: Sequence[ReplicaSpec]) -> PlatformState:
        current = read_json(self.desired_path) if self.desired_path.exists() else None
        generation = int((current or {}).get("generation", 0)) + 1
        replicas = {
            spec.name: {"argv": list(spec.argv), "env": dict(spec.env), "cwd": spec.cwd}
            for _, spec in state.all()
        }
        write_json_atomic(
            self.desired_path, {"generation": generation, "shutdown": False, "replicas": replicas}
        )
        deadline = time.monotonic() + self.stop_timeout + 10.0
        while time.monotonic() < deadline:
            status = self._status()
            if int(status.get("generation", -1)) >= generation:
                return state
            if state.supervisor is not None and not state.supervisor.alive():
                break
            time.sleep(0.02)
        raise PlatformError(
            f"the replica supervisor ({state.supervisor}) did not apply the new replica set; "
            f"see {self.dir / 'supervisor.log'}"
        )

    def observe(self, state: PlatformState) -> dict[str, Observed]:
        replicas = self._status().get("replicas", {})
        alive = state.supervisor is not None and state.supervisor.alive()
        observed = {}
        for _, spec in state.all():
            info = replicas.get(spec.name)
            if info is None:
                observed[spec.name] = Observed(False, 0, "not started by the supervisor")
                continue
            running = bool(info.get("running")) and alive
            if running and info.get("pid"):
                running = ProcessRef(int(info["pid"]), info.get("start_time")).alive()
            detail = str(info.get("error") or "")
            if not alive:
                detail = "the supervisor is not running"
            elif not running and info.get("last_exit") is not None:
                detail = f"exited with {info['last_exit']}"
            observed[spec.name] = Observed(running, int(info.get("restarts", 0)), detail)
        return observed

    def logs(self, state: PlatformState, replica: ReplicaSpec) -> str:
        path = self.dir / "logs" / f"{replica.name}.log"
        try:
            return _tail(path.read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return ""

    def shutdown(self, state: PlatformState) -> None:
        if state.supervisor is not None and state.supervisor.alive():
            # SIGTERM makes the supervisor stop its children, then exit.
            terminate(state.supervisor, timeout=self.stop_timeout + 5.0)
        self._kill_orphans()
        for path in (self.desired_path, self.status_path):
            path.unlink(missing_ok=True)


class DockerRuntime:
    """Replicas as Docker containers on the host network."""

    def __init__(self, label: str, stop_timeout: float) -> None:
        self.label = label
        self.stop_timeout = stop_timeout
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            try:
                import docker
            except ImportError:
                raise PlatformError(
                    "platform.type 'local-docker' needs the docker package: "
                    "pip install 'pytest-release[docker]'"
                ) from None
            try:
                client = docker.from_env()
                client.ping()
            except Exception as exc:
                raise PlatformError(
                    f"cannot reach the Docker daemon ({exc}); start dockerd "
                    "(scripts/start-docker.sh) or use platform.type = 'local-process'"
                ) from None
            self._client = client
        return self._client

    def prepare(self, state: PlatformState) -> PlatformState:
        self.client()
        return state

    def _check_image(self, image: str) -> None:
        import docker.errors

        try:
            self.client().images.get(image)
        except docker.errors.ImageNotFound:
            raise PlatformError(
                f"image {image!r} is not present in the local Docker daemon and there is no "
                "registry to pull from; build it (docker build -t ...) or docker load it first"
            ) from None

    def apply(self, state: PlatformState, stopping: Sequence[ReplicaSpec]) -> PlatformState:
        import docker.errors

        client = self.client()
        for spec in stopping:
            self._remove(spec)
        started: dict[str, str] = {}
        for _, spec in state.all():
            if spec.container_id:
                continue
            self._check_image(spec.image)
            name = f"pytest-release-{self.label}-{spec.name}"
            try:
                old = client.containers.get(name)
                old.remove(force=True)
            except docker.errors.NotFound:
                pass
            try:
                container = client.containers.run(
                    spec.image,
                    command=list(spec.argv) or None,
                    environment=dict(spec.env),
                    network_mode="host",
                    init=True,
                    detach=True,
                    name=name,
                    restart_policy={"Name": "always"},
                    labels={
                        "pytest-release.platform": self.label,
                        "pytest-release.replica": spec.name,
                    },
                )
            except docker.errors.APIError as exc:
                raise PlatformError(
                    f"cannot start container {name} from {spec.image}: {exc}"
                ) from None
            started[spec.name] = str(container.id)

        def with_ids(group: tuple[ReplicaSpec, ...]) -> tuple[ReplicaSpec, ...]:
            return tuple(
                replace(s, container_id=started[s.name]) if s.name in started else s for s in group
            )

        return replace(state, stable=with_ids(state.stable), canary=with_ids(state.canary))

    def _remove(self, spec: ReplicaSpec) -> None:
        import docker.errors

        if not spec.container_id:
            return
        try:
            container = self.client().containers.get(spec.container_id)
            container.stop(timeout=int(self.stop_timeout))
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    def observe(self, state: PlatformState) -> dict[str, Observed]:
        import docker.errors

        observed = {}
        for _, spec in state.all():
            if not spec.container_id:
                observed[spec.name] = Observed(False, 0, "no container")
                continue
            try:
                container = self.client().containers.get(spec.container_id)
            except docker.errors.NotFound:
                observed[spec.name] = Observed(
                    False, 0, f"container {spec.container_id[:12]} is gone"
                )
                continue
            st = container.attrs.get("State", {})
            running = bool(st.get("Running")) and not st.get("Restarting")
            detail = "" if running else f"status {st.get('Status')}, exit code {st.get('ExitCode')}"
            observed[spec.name] = Observed(
                running, int(container.attrs.get("RestartCount", 0)), detail
            )
        return observed

    def logs(self, state: PlatformState, replica: ReplicaSpec) -> str:
        if not replica.container_id:
            return ""
        try:
            raw = self.client().containers.get(replica.container_id).logs(tail=20)
        except Exception:
            return ""
        return _tail(raw.decode("utf-8", errors="replace"))

    def shutdown(self, state: PlatformState) -> None:
        for _, spec in state.all():
            self._remove(spec)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _render(template: str, values: Mapping[str, str]) -> str:
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        raise PlatformError(
            f"cannot fill in the template {template!r}: {exc}; the placeholders are "
            f"{', '.join('{' + k + '}' for k in values)} (write '{{{{' for a literal brace)"
        ) from None


class LocalPlatform:
    """:class:`~pytest_release.canary.platform.Platform` on this machine."""

    def __init__(self, config: LocalPlatformConfig, rootdir: Path) -> None:
        self.config = config
        self.rootdir = rootdir
        state_dir = Path(config.state_dir)
        self.state_dir = state_dir if state_dir.is_absolute() else rootdir / state_dir
        self.state_path = self.state_dir / "platform.json"
        self.name = f"local ({config.type}, {self.state_dir})"
        self._lock = FileLock(str(self.state_dir / "platform.lock"))
        label = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:10]
        self.runtime: _Runtime = (
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
        try:
            data = read_json(self.state_path)
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
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

    def _new_replica(self, state: PlatformState, image: str) -> tuple[PlatformState, ReplicaSpec]:
        serial = state.serial + 1
        name = f"r{serial}"
        taken = {r.port for _, r in state.all()}
        port = free_port(HOST)
        while port in taken:
            port = free_port(HOST)
        values = {"port": str(port), "image": image, "replica": name}
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        if self.config.type == "local-docker":
            env = {}
        env.update({"PORT": str(port), "RELEASE_IMAGE": image, "RELEASE_REPLICA": name})
        for key, value in {**self.config.env, **self.config.image_env.get(image, {})}.items():
            env[key] = _render(value, values)
        argv = tuple(_render(part, values) for part in self.config.command)
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
            self._save(state)
            state = self.runtime.apply(state, ())
            self._save(state)
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
            self._save(state)
            state = self.runtime.apply(state, stopping)
            self._save(state)
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
            self._save(state)
            state = self.runtime.apply(state, old)
            self._save(state)
            return self._status_of(state)

    def rollback(self) -> PlatformStatus:
        with self.locked():
            state = self.runtime.prepare(self.load())
            stopping = state.canary
            state = replace(state, canary=(), canary_image=None)
            self._save(state)
            state = self.runtime.apply(state, stopping)
            self._save(state)
            return self._status_of(state)

    def cleanup(self) -> None:
        with self.locked():
            try:
                state = self.load()
            except PlatformError:
                return
            self.runtime.shutdown(state)
            self.state_path.unlink(missing_ok=True)

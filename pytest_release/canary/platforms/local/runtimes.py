"""How local replicas run: as processes under the supervisor daemon (``local-process``)
or as Docker containers with host networking (``local-docker``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from pytest_release.canary.platforms.local.state import (
    BASE_ENV,
    SUPERVISOR_SCRIPT,
    Observed,
    PlatformState,
    ReplicaSpec,
)
from pytest_release.errors import PlatformError
from pytest_release.system.processes import (
    ProcessRef,
    read_json,
    terminate,
    write_json_atomic,
)


class Runtime(Protocol):
    def prepare(self, state: PlatformState) -> PlatformState: ...
    def apply(self, state: PlatformState, stopping: Sequence[ReplicaSpec]) -> PlatformState: ...
    def observe(self, state: PlatformState) -> dict[str, Observed]: ...
    def logs(self, state: PlatformState, replica: ReplicaSpec) -> str: ...
    def shutdown(self, state: PlatformState) -> None: ...


def probe_health(endpoint: str, path: str, timeout: float = 1.0) -> tuple[bool, str]:
    """(answered 2xx or 3xx, description) for a GET of ``path`` at ``host:port``."""
    import httpx

    from pytest_release.canary.http import ClientSettings, failure, http_client, http_origin

    try:
        with http_client(ClientSettings(timeout=timeout)) as client:
            status = client.get(http_origin(endpoint) + path).status_code
    except httpx.HTTPError as exc:
        return False, failure("GET", path, exc)
    return 200 <= status < 400, f"GET {path} -> {status}"


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
                {k: os.environ[k] for k in BASE_ENV if k in os.environ},
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


def render_template(template: str, values: Mapping[str, str]) -> str:
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        raise PlatformError(
            f"cannot fill in the template {template!r}: {exc}; the placeholders are "
            f"{', '.join('{' + k + '}' for k in values)} (write '{{{{' for a literal brace)"
        ) from None

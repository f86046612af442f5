"""Docker operations of the docker gate: connect, build, run until healthy, inspect, clean.

Results are plain JSON-able dataclasses because they are computed once per session
(:meth:`RunDir.run_once`) and read by every xdist worker.  The ``docker`` package is
imported lazily so the gate module stays cheap to import.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_release.errors import GateSetupError
from pytest_release.system.json_record import JsonRecord

LABEL_RUN = "pytest-release.run"
LABEL_GATE = "pytest-release.gate"
LABEL_STAGE = "pytest-release.stage"
LABEL_RELEASE = "pytest-release.release"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
CLIENT_TIMEOUT = 300  # seconds per API call; a vfs build step can be slow
_POLL = 0.5
_NAME_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


class DockerUnavailable(GateSetupError):
    """The daemon (or the docker package) is not there; the message says how to fix it."""


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def safe_name(text: str) -> str:
    """``text`` usable in container names and image repositories."""
    return _NAME_UNSAFE.sub("-", text.lower()).strip("-.") or "gate"


def connect() -> Any:
    """A ``docker.DockerClient`` that answered a ping, or :class:`DockerUnavailable`."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailable(
            "the docker gate needs the 'docker' Python package: "
            "pip install 'pytest-release[docker]'"
        ) from None
    host = docker_host()
    try:
        client = docker.from_env(timeout=CLIENT_TIMEOUT)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(
            f"cannot reach the Docker daemon at DOCKER_HOST={host}: {exc}\n"
            "Start the daemon (`sudo systemctl start docker`, or `dockerd &`; in the "
            "pytest-release repository `bash scripts/start-docker.sh`) or set DOCKER_HOST "
            "to a daemon that answers (e.g. DOCKER_HOST=unix:///var/run/docker.sock)."
        ) from None
    return client


# -- results shared between processes ------------------------------------------------------
@dataclass(frozen=True)
class ImageInfo(JsonRecord):
    """The outcome of building (or finding) the gate's image."""

    ok: bool
    ref: str
    error: str = ""
    log: str = ""
    image_id: str = ""
    size: int = 0
    env: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    healthcheck: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def has_healthcheck(self) -> bool:
        return bool(self.healthcheck) and self.healthcheck[0] != "NONE"


@dataclass(frozen=True)
class ContainerInfo(JsonRecord):
    """The outcome of starting the gate's container and waiting until it is healthy."""

    ok: bool
    name: str
    error: str = ""
    container_id: str = ""
    exit_code: int | None = None
    logs: str = ""
    healthy_by: tuple[str, ...] = ()
    seconds: float = 0.0


def _inspect_image(client: Any, ref: str) -> dict[str, Any]:
    attrs: dict[str, Any] = client.images.get(ref).attrs
    return attrs


def _image_info(ref: str, attrs: Mapping[str, Any], log: str, seconds: float) -> ImageInfo:
    config = attrs.get("Config") or {}
    health = config.get("Healthcheck") or {}
    return ImageInfo(
        ok=True,
        ref=ref,
        log=log,
        image_id=str(attrs.get("Id", "")),
        size=int(attrs.get("Size") or 0),
        env=tuple(config.get("Env") or ()),
        labels=dict(config.get("Labels") or {}),
        user=str(config.get("User") or ""),
        healthcheck=tuple(health.get("Test") or ()),
        seconds=seconds,
    )


def missing_build_input(context: Path, dockerfile: str) -> str | None:
    """Why the build cannot start (missing context or Dockerfile), or None."""
    if not context.is_dir():
        return f"the build context {context} does not exist; set context (relative to the rootdir)"
    if not (context / dockerfile).is_file():
        return (
            f"the Dockerfile {context / dockerfile} does not exist; set dockerfile "
            "(relative to the context)"
        )
    return None


def build_image(
    client: Any,
    *,
    context: Path,
    dockerfile: str,
    build_args: Mapping[str, str],
    ref: str,
    labels: Mapping[str, str],
) -> ImageInfo:
    """Build with the daemon's (legacy) builder; the log is kept for the report."""
    import docker

    start = time.monotonic()
    problem = missing_build_input(context, dockerfile)
    if problem is not None:
        return ImageInfo(ok=False, ref=ref, error=problem)
    lines: list[str] = []
    error = ""
    try:
        for chunk in client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=ref,
            buildargs=dict(build_args),
            labels=dict(labels),
            rm=True,
            forcerm=True,
            network_mode="host",
            decode=True,
        ):
            if "stream" in chunk:
                lines.append(str(chunk["stream"]))
            if "error" in chunk:
                error = str(chunk["error"]).strip()
    except docker.errors.DockerException as exc:
        error = str(exc)
    log = "".join(lines)
    seconds = time.monotonic() - start
    if error:
        return ImageInfo(ok=False, ref=ref, error=error, log=log, seconds=seconds)
    return _image_info(ref, _inspect_image(client, ref), log, seconds)


def repository_of(ref: str) -> str:
    """``host:5000/shop`` from ``host:5000/shop:tag`` (a port is not a tag)."""
    name = ref.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def push_image(client: Any, image_id: str, refs: list[str]) -> list[tuple[str, str]]:
    """Tag ``image_id`` as each of ``refs``, push, and read every digest back from the
    registry (through the daemon).  Returns (ref, digest); raises RuntimeError."""
    import docker

    pushed = []
    for ref in refs:
        repository = repository_of(ref)
        tag = ref[len(repository) + 1 :] or "latest"
        try:
            client.api.tag(image_id, repository, tag)
            errors = [
                str(chunk["error"]).strip()
                for chunk in client.api.push(repository, tag=tag, stream=True, decode=True)
                if "error" in chunk
            ]
            if errors:
                raise GateSetupError(f"pushing {ref} failed: {errors[-1]}")
            descriptor = client.api.inspect_distribution(f"{repository}:{tag}")
        except docker.errors.DockerException as exc:
            raise GateSetupError(f"pushing {ref} failed: {exc}") from None
        pushed.append((ref, str(descriptor.get("Descriptor", {}).get("digest", ""))))
    return pushed


def find_image(client: Any, ref: str) -> ImageInfo:
    import docker

    try:
        return _image_info(ref, _inspect_image(client, ref), "", 0.0)
    except docker.errors.ImageNotFound:
        return ImageInfo(
            ok=False,
            ref=ref,
            error=f"the image {ref} does not exist locally (the gate does not pull); build "
            "it first or set build = true",
        )


# -- running -------------------------------------------------------------------------------
def http_probe(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(answered 2xx, description) for a GET of ``url``."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        return False, f"GET {url}: {type(exc).__name__}: {exc}"
    ok = 200 <= response.status_code < 300
    return ok, f"GET {url}: HTTP {response.status_code}"


def tcp_probe(port: int, timeout: float = 1.0) -> tuple[bool, str]:
    """(127.0.0.1:port accepts a connection, description)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True, f"127.0.0.1:{port} accepts connections"
    except OSError as exc:
        return False, f"127.0.0.1:{port}: {exc}"


def exit_after_reload(container: Any) -> str | None:
    """Reload ``container`` (docker's object); once it has exited (or died), the words
    ``exited with code N`` for the messages, else None."""
    container.reload()
    if container.status in ("exited", "dead"):
        code = (container.attrs.get("State") or {}).get("ExitCode")
        return f"exited with code {code}"
    return None


def tail_logs(container: Any, lines: int) -> str:
    raw = container.logs(stdout=True, stderr=True, tail=lines)
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _health_state(container: Any) -> tuple[str, str]:
    """(status, last probe output) of the image's HEALTHCHECK."""
    health = (container.attrs.get("State") or {}).get("Health") or {}
    log = health.get("Log") or []
    last = str(log[-1].get("Output", "")).strip() if log else ""
    return str(health.get("Status", "")), last


def run_container(
    client: Any,
    image: ImageInfo,
    *,
    name: str,
    env: Mapping[str, str],
    command: Sequence[str] | None,
    labels: Mapping[str, str],
    health_url: str | None,
    tcp_port: int | None,
    health_timeout: float,
    stay_up: float,
    log_lines: int,
) -> ContainerInfo:
    """Start the container (host network, docker-init as PID 1) and wait until it is
    healthy (HEALTHCHECK and/or HTTP probe; with neither, until ``tcp_port`` accepts
    connections), then check it is still up ``stay_up`` later.
    A container that fails is left in place (for its logs) until the session cleans up."""
    import docker

    start = time.monotonic()
    try:
        container = client.containers.run(
            image.image_id or image.ref,
            command=list(command) if command is not None else None,
            name=name,
            detach=True,
            init=True,
            network_mode="host",
            environment=dict(env),
            labels=dict(labels),
        )
    except docker.errors.DockerException as exc:
        return ContainerInfo(ok=False, name=name, error=f"could not start the container: {exc}")

    def failed(message: str) -> ContainerInfo:
        container.reload()
        state = container.attrs.get("State") or {}
        running = state.get("Running", False)
        return ContainerInfo(
            ok=False,
            name=name,
            error=message,
            container_id=container.id,
            exit_code=None if running else state.get("ExitCode"),
            logs=tail_logs(container, log_lines),
            seconds=time.monotonic() - start,
        )

    healthy_by: list[str] = []
    waiting_for = "the container to run"
    deadline = start + health_timeout
    while True:
        exited = exit_after_reload(container)
        if exited is not None:
            return failed(
                f"container {name} {exited} before it became healthy "
                f"(after {time.monotonic() - start:.1f}s)"
            )
        ready = container.status == "running"
        reasons: list[str] = []
        if ready and image.has_healthcheck:
            status, output = _health_state(container)
            if status == "unhealthy":
                return failed(
                    f"container {name}: the image's HEALTHCHECK reports unhealthy "
                    f"(last probe output: {output or '(none)'})"
                )
            if status != "healthy":
                ready = False
                reasons.append(f"HEALTHCHECK status {status or 'unknown'}")
        if ready and health_url is not None:
            answered, description = http_probe(health_url)
            if not answered:
                ready = False
                reasons.append(description)
        elif ready and not image.has_healthcheck and tcp_port is not None:
            answered, description = tcp_probe(tcp_port)
            if not answered:
                ready = False
                reasons.append(description)
        if ready:
            if image.has_healthcheck:
                healthy_by.append("HEALTHCHECK healthy")
            if health_url is not None:
                healthy_by.append(f"GET {health_url} answered 2xx")
            elif not image.has_healthcheck and tcp_port is not None:
                healthy_by.append(f"127.0.0.1:{tcp_port} accepts connections")
            break
        waiting_for = "; ".join(reasons) or f"status {container.status}"
        if time.monotonic() >= deadline:
            return failed(
                f"container {name} did not become healthy within {health_timeout:g}s "
                f"(last: {waiting_for}); raise health_timeout if it needs longer"
            )
        time.sleep(_POLL)

    time.sleep(stay_up)
    container.reload()
    if container.status != "running":
        code = (container.attrs.get("State") or {}).get("ExitCode")
        return failed(
            f"container {name} became healthy but exited with code {code} within "
            f"{stay_up:g}s (stay_up)"
        )
    return ContainerInfo(
        ok=True,
        name=name,
        container_id=container.id,
        healthy_by=tuple(healthy_by),
        seconds=time.monotonic() - start,
    )


def process_uids(container: Any) -> list[tuple[int, str]]:
    """(uid, command) of every process in the container, read by the daemon (``ps``)."""
    top = container.top(ps_args="-o uid,pid,comm")
    titles = [t.upper() for t in top.get("Titles") or []]
    uid_col, cmd_col = titles.index("UID"), titles.index("COMMAND")
    return [(int(row[uid_col]), str(row[cmd_col])) for row in top.get("Processes") or []]


def is_root(user: str) -> bool:
    """Whether an image's ``User`` (``name``, ``uid``, ``name:group``...) means root."""
    name = user.split(":", 1)[0].strip()
    return name in ("", "0", "root")


# -- cleanup -------------------------------------------------------------------------------
def remove_labelled(client: Any, label: str, value: str) -> list[str]:
    """Remove every container and image labelled ``label=value``; returns problems."""
    import docker

    problems: list[str] = []
    selector = {"label": f"{label}={value}"}
    for container in client.containers.list(all=True, filters=selector):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            problems.append(f"container {container.name}: {exc}")
    for image in client.images.list(all=True, filters=selector):
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as exc:
            problems.append(f"image {image.id}: {exc}")
    return problems

"""Dependency containers for tests in a docker gate (testcontainers, local images only).

This machine has no registry: images must exist locally (built by the gate, imported,
or loaded).  Ryuk (testcontainers' reaper) cannot be pulled, so it is disabled and the
gate removes the containers itself: at the end of the test that started them and, as a
fallback, by the session's run label.  Containers use the host network, so readiness
is checked with a log line, an HTTP poll of ``127.0.0.1:PORT`` or a TCP connect, never
with port-mapping wait strategies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_release.errors import GateSetupError
from pytest_release.gates.docker.engine import (
    DEFAULT_DOCKER_HOST,
    exit_after_reload,
    http_probe,
    tail_logs,
    tcp_probe,
)

_POLL = 0.25


class DependencyFailed(GateSetupError):
    """A dependency container did not become ready; the message has its logs."""


def _testcontainers() -> Any:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("DOCKER_HOST", DEFAULT_DOCKER_HOST)
    from testcontainers.core import container
    from testcontainers.core.config import testcontainers_config

    if os.environ["TESTCONTAINERS_RYUK_DISABLED"].lower() == "true":
        testcontainers_config.ryuk_disabled = True
    return container


@dataclass(frozen=True)
class Dependency:
    """A started dependency: the testcontainers object and where it listens."""

    container: Any  # testcontainers.core.container.DockerContainer
    port: int | None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ValueError("this dependency was started without a port")
        return f"http://127.0.0.1:{self.port}"

    def logs(self, lines: int = 200) -> str:
        return tail_logs(self.container.get_wrapped_container(), lines)


@dataclass
class Dependencies:
    """Starts dependency containers and removes them (``stop_all``)."""

    labels: Mapping[str, str]
    started: list[Dependency] = field(default_factory=list)

    def start(
        self,
        image: str,
        *,
        command: str | Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        ready_path: str | None = None,
        ready_log: str | None = None,
        timeout: float = 30.0,
    ) -> Dependency:
        """Run ``image`` (a local image) on the host network and wait until it is ready:
        ``ready_log`` appears in its output, ``GET 127.0.0.1:port/ready_path`` answers
        2xx, or (with only ``port``) the port accepts connections."""
        if ready_path is not None and port is None:
            raise ValueError(f"ready_path={ready_path!r} needs port=, the port it listens on")
        module = _testcontainers()
        container = module.DockerContainer(
            image, command=list(command) if isinstance(command, list | tuple) else command
        )
        for key, value in (env or {}).items():
            container.with_env(key, value)
        container.with_kwargs(network_mode="host", init=True, labels=dict(self.labels))
        container.start()
        dependency = Dependency(container, port)
        self.started.append(dependency)
        self._wait(dependency, image, ready_path, ready_log, timeout)
        return dependency

    def _wait(
        self,
        dependency: Dependency,
        image: str,
        ready_path: str | None,
        ready_log: str | None,
        timeout: float,
    ) -> None:
        wrapped = dependency.container.get_wrapped_container()
        deadline = time.monotonic() + timeout
        last = "not checked yet"
        while True:
            exited = exit_after_reload(wrapped)
            if exited is not None:
                raise DependencyFailed(
                    f"dependency {image} {exited}; its logs:\n{dependency.logs()}"
                )
            if ready_log is not None:
                ready = ready_log in dependency.logs(lines=1000)
                last = f"waiting for {ready_log!r} in its logs"
            elif ready_path is not None:
                ready, last = http_probe(f"{dependency.base_url}{ready_path}")
            elif dependency.port is not None:
                ready, last = tcp_probe(dependency.port)
            else:
                ready = wrapped.status == "running"
                last = f"status {wrapped.status}"
            if ready:
                return
            if time.monotonic() >= deadline:
                raise DependencyFailed(
                    f"dependency {image} was not ready within {timeout:g}s ({last}); "
                    f"its logs:\n{dependency.logs()}"
                )
            time.sleep(_POLL)

    def stop_all(self) -> list[str]:
        """Remove every started container; returns problems (never raises)."""
        problems: list[str] = []
        while self.started:
            dependency = self.started.pop()
            try:
                dependency.container.stop()
            except Exception as exc:  # cleanup must go on with the others
                problems.append(f"{dependency.container.image}: {exc}")
        return problems

"""Per-process state of the docker gate: the image built and the container started once per
session (also under xdist, through the run directory), their logs, and their removal."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gates.docker.config import DockerGateConfig
from pytest_release.gates.docker.secrets import name_matches
from pytest_release.report.redact import Redactor
from pytest_release.stage.session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.config.tables import GateConfig
    from pytest_release.gates.docker.engine import ContainerInfo, ImageInfo
    from pytest_release.stage.session import StageSession
    from pytest_release.system.json_record import JsonRecord


BUILD_LOG_LINES = 40

R = TypeVar("R", bound="JsonRecord")


# -- per-process state ---------------------------------------------------------------------
class DockerGateState:
    """What one process knows: the client, results computed once per session, and
    which containers it looked at (for log attachments)."""

    def __init__(self, session: StageSession) -> None:
        self.session = session
        self.run = session.run
        digest = hashlib.sha256(str(session.run_dir.path).encode()).hexdigest()
        self.run_id = digest[:12]
        self._client: Any = None
        self.used_docker = False
        self.images: dict[str, ImageInfo] = {}
        self.containers: dict[str, ContainerInfo] = {}
        self.cleanup_message = ""
        self.cleaned = False
        # The stage's own docker gates (reading every gate would load every gate kind).
        self.redact = _redactor(session, [self.run.config.gates[g] for g in self.run.plan.order])

    @property
    def marker(self) -> Path:
        """Exists once any process of the session talked to the daemon."""
        return self.session.run_dir.path / f"docker-used-{self.run_id}"

    def gate(self, name: str) -> DockerGateConfig:
        gate = self.run.config.gates[name]
        assert isinstance(gate, DockerGateConfig)
        return gate

    def client(self) -> Any:
        """The Docker client, or :class:`DockerUnavailable` naming DOCKER_HOST."""
        if self._client is None:
            from pytest_release.gates.docker.engine import connect

            self._client = connect()
            if not self.used_docker:
                self.used_docker = True
                self.marker.touch()
        return self._client

    def labels(self, gate_name: str | None, *, removable: bool = True) -> dict[str, str]:
        """Labels of what the session creates.  Images get no gate label: gates building
        the same Dockerfile then share one cached image (a vfs build step is slow)."""
        from pytest_release.gates.docker.engine import (
            LABEL_GATE,
            LABEL_RELEASE,
            LABEL_RUN,
            LABEL_STAGE,
        )

        labels = {LABEL_STAGE: self.run.stage, LABEL_RELEASE: self.run.release_id}
        if gate_name is not None:
            labels[LABEL_GATE] = gate_name
        if removable:
            labels[LABEL_RUN] = self.run_id
        return labels

    def image_ref(self, gate_name: str) -> str:
        from pytest_release.gates.docker.engine import safe_name

        gate = self.gate(gate_name)
        return self.run.image or gate.tag or f"pytest-release/{safe_name(gate_name)}:{self.run_id}"

    def container_name(self, gate_name: str) -> str:
        from pytest_release.gates.docker.engine import safe_name

        return f"pytest-release-{self.run_id}-{safe_name(gate_name)}"

    def _once(
        self,
        kept: dict[str, R],
        gate_name: str,
        what: str,
        record: type[R],
        compute: Callable[[], R],
    ) -> R:
        """The gate's ``what`` (its image, its container): computed by one process of the
        session (:meth:`RunDir.run_once`), read back by every other, and kept in ``kept``."""
        if gate_name not in kept:
            data = self.session.run_dir.run_once(
                f"docker-gate:{gate_name}:{what}", lambda: compute().to_json()
            )
            kept[gate_name] = record.from_json(data)
        return kept[gate_name]

    def image(self, gate_name: str) -> ImageInfo:
        from pytest_release.gates.docker.engine import (
            DockerUnavailable,
            ImageInfo,
            build_image,
            find_image,
            missing_build_input,
        )

        gate = self.gate(gate_name)
        ref = self.image_ref(gate_name)

        def compute() -> ImageInfo:
            context = self.run.rootdir / gate.context
            problem = missing_build_input(context, gate.dockerfile) if gate.build else None
            if problem is not None:
                return ImageInfo(ok=False, ref=ref, error=problem)
            try:
                client = self.client()
            except DockerUnavailable as exc:
                return ImageInfo(ok=False, ref=ref, error=str(exc))
            if not gate.build:
                return find_image(client, ref)
            return build_image(
                client,
                context=context,
                dockerfile=gate.dockerfile,
                build_args=gate.build_args,
                ref=ref,
                labels=self.labels(None, removable=not gate.keep_image),
            )

        return self._once(self.images, gate_name, "image", ImageInfo, compute)

    def container_env(self, gate_name: str) -> tuple[dict[str, str], list[str]]:
        """The container's configured environment and the ``pass_env`` names not set."""
        gate = self.gate(gate_name)
        env = dict(gate.env)
        missing = []
        for name in gate.pass_env:
            if os.environ.get(name) is None:
                missing.append(name)
            else:
                env[name] = os.environ[name]
        return env, missing

    def container(self, gate_name: str) -> ContainerInfo:
        from pytest_release.gates.docker.engine import (
            ContainerInfo,
            DockerUnavailable,
            run_container,
        )

        gate = self.gate(gate_name)
        name = self.container_name(gate_name)

        def compute() -> ContainerInfo:
            image = self.image(gate_name)
            if not image.ok:
                return ContainerInfo(
                    ok=False,
                    name=name,
                    error=f"no container: the image {image.ref} is not available (see the "
                    f"'build' check): {image.error.splitlines()[0] if image.error else ''}",
                )
            env, missing = self.container_env(gate_name)
            if missing:
                return ContainerInfo(
                    ok=False,
                    name=name,
                    error=f"pass_env names variables that are not set in the environment of "
                    f"pytest: {', '.join(missing)}; export them or remove them from "
                    f"[tool.pytest-release.gates.{gate_name}].pass_env",
                )
            try:
                client = self.client()
            except DockerUnavailable as exc:
                return ContainerInfo(ok=False, name=name, error=str(exc))
            health_url = (
                f"http://127.0.0.1:{gate.port}{gate.health_path}" if gate.health_path else None
            )
            return run_container(
                client,
                image,
                name=name,
                env=env,
                command=gate.command,
                labels=self.labels(gate_name),
                health_url=health_url,
                tcp_port=gate.port,
                health_timeout=gate.health_timeout,
                stay_up=gate.stay_up,
                log_lines=gate.log_lines,
            )

        return self._once(self.containers, gate_name, "container", ContainerInfo, compute)

    def running_container(self, gate_name: str) -> Any:
        """The gate's container object; GateCheckFailed when it did not start."""
        from pytest_release.gates.docker.engine import DockerUnavailable

        info = self.container(gate_name)
        if not info.ok or not info.container_id:
            raise GateCheckFailed(
                self.redact(
                    f"the container did not start (see 'starts-and-stays-up'): {info.error}"
                )
            )
        try:
            container = self.client().containers.get(info.container_id)
        except DockerUnavailable as exc:
            raise GateCheckFailed(str(exc)) from None
        return container

    def logs(self, gate_name: str) -> tuple[str, str] | None:
        """(container name, last log lines) of a container this process looked at."""
        from pytest_release.gates.docker.engine import tail_logs

        info = self.containers.get(gate_name)
        if info is None:
            return None
        text = info.logs
        if info.container_id:
            try:
                container = self.client().containers.get(info.container_id)
                text = tail_logs(container, self.gate(gate_name).log_lines)
            except Exception:  # gone or daemon down: fall back to the logs kept at start
                text = info.logs
        return info.name, self.redact(text) if text else "(no output)"

    def cleanup(self) -> None:
        """Remove the session's containers and images (by label), once, if docker was
        used by any process of the session."""
        if self.cleaned:
            return
        self.cleaned = True
        if not (self.used_docker or self.marker.exists()):
            return
        from pytest_release.gates.docker.engine import LABEL_RUN, DockerUnavailable, remove_labelled

        try:
            problems = remove_labelled(self.client(), LABEL_RUN, self.run_id)
        except DockerUnavailable as exc:
            self.cleanup_message = (
                f"docker gate: could not clean up {LABEL_RUN}={self.run_id}: {exc}"
            )
            return
        if problems:
            self.cleanup_message = (
                f"docker gate: could not remove everything labelled {LABEL_RUN}={self.run_id}: "
                + "; ".join(problems)
            )


def _redactor(session: StageSession, gates: Iterable[GateConfig]) -> Redactor:
    """The stage's redactor plus values the docker gates pass that look secret."""
    values: list[str] = list(session.redact.values)
    for gate in gates:
        if not isinstance(gate, DockerGateConfig):
            continue
        values.extend(os.environ.get(name, "") for name in gate.pass_env)
        for mapping in (gate.env, gate.build_args):
            values.extend(v for k, v in mapping.items() if name_matches(k, gate.secret_names))
    return Redactor.from_env((), environ={}, extra_values=values)


STATE_KEY = pytest.StashKey[DockerGateState]()


def docker_state(config: pytest.Config) -> DockerGateState | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        session = get_stage_session(config)
        if session is None:
            return None
        state = DockerGateState(session)
        config.stash[STATE_KEY] = state
    return state


def docker_gates(config: pytest.Config) -> list[str]:
    state = docker_state(config)
    if state is None:
        return []
    return [
        g for g in state.run.plan.order if isinstance(state.run.config.gates[g], DockerGateConfig)
    ]

"""Fixtures for the tests of a docker gate: the release container, its base URL and logs,
and dependency containers (testcontainers, local images)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gates.docker.config import DockerGateConfig
from pytest_release.gates.docker.state import DockerGateState, docker_gates, docker_state

if TYPE_CHECKING:
    from pytest_release.gates.docker.dependencies import Dependency


# -- fixtures for tests in the gate -------------------------------------------------------
def _target(request: pytest.FixtureRequest) -> tuple[DockerGateState, str]:
    from pytest_release.stage.session import GATE_KEY

    state = docker_state(request.config)
    if state is None:
        pytest.fail("the release_* docker fixtures need --stage", pytrace=False)
    gate = request.node.stash.get(GATE_KEY, None)
    if gate is not None and isinstance(state.run.config.gates.get(gate), DockerGateConfig):
        return state, gate
    gates = docker_gates(request.config)
    if not gates:
        pytest.fail(
            f"{request.fixturename} needs a docker gate in stage '{state.run.stage}' "
            f'(a gate with kind = "docker"); its gates: {", ".join(state.run.plan.order)}',
            pytrace=False,
        )
    return state, gates[0]


@pytest.fixture
def release_container(request: pytest.FixtureRequest) -> Any:
    """The running container of the docker gate (``docker.models.containers.Container``)."""
    state, gate = _target(request)
    try:
        return state.running_container(gate)
    except GateCheckFailed as exc:
        pytest.fail(f"docker gate '{gate}': {exc.message}", pytrace=False)


@pytest.fixture
def release_base_url(request: pytest.FixtureRequest, release_container: Any) -> str:
    """``http://127.0.0.1:<port>`` of the gate's running container."""
    state, gate = _target(request)
    port = state.gate(gate).port
    if port is None:
        pytest.fail(
            f"release_base_url needs port in [tool.pytest-release.gates.{gate}]", pytrace=False
        )
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def release_container_logs(
    request: pytest.FixtureRequest, release_container: Any
) -> Callable[[], str]:
    """A function returning the container's current logs (redacted)."""
    from pytest_release.gates.docker.engine import tail_logs

    state, gate = _target(request)
    lines = state.gate(gate).log_lines

    def logs() -> str:
        return state.redact(tail_logs(release_container, lines))

    return logs


@pytest.fixture
def release_dependency(request: pytest.FixtureRequest) -> Iterator[Callable[..., Dependency]]:
    """``release_dependency(image, port=..., ready_path=..., ready_log=..., env=..., command=...)``
    starts a dependency container (testcontainers, host network, a local image) and
    removes it after the test."""
    from pytest_release.gates.docker.dependencies import Dependencies

    state, gate = _target(request)
    dependencies = Dependencies(labels=state.labels(gate))
    try:
        yield dependencies.start
    finally:
        problems = dependencies.stop_all()
        if problems:
            pytest.fail("could not remove dependency containers: " + "; ".join(problems))

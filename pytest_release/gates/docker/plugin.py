"""The ``docker`` gate: build the service image, run it, check it.

Configuration: :class:`~pytest_release.gates.docker.config.DockerGateConfig`
(``[tool.pytest-release.gates.<name>]`` with ``kind = "docker"``).

Items, in order (their ``reportinfo`` points at the relevant Dockerfile line):

* ``build`` (``image`` with ``build = false``): the image builds (docker SDK, legacy
  builder) from ``context``/``dockerfile`` with ``build_args``, tagged ``--image``, else
  ``tag``, else ``pytest-release/<gate>:<run id>``;
* ``starts-and-stays-up``: a container (host network, ``init=True``, ``env``) becomes
  healthy within ``health_timeout`` and still runs ``stay_up`` later and when checked;
* ``health``: the image's HEALTHCHECK says healthy and/or ``GET 127.0.0.1:port`` +
  ``health_path`` answers 2xx;
* ``non-root-user``: no process of the container runs as uid 0 (and ``user`` matches);
* ``required-env``: ``required_env`` are set in the container, and visible (with the
  configured ``env`` values) at ``env_endpoint`` when set;
* ``image-size``: the image is within ``max_image_size_mb``;
* ``no-secrets``: no secret-looking value in the image's ENV or labels (shown redacted);
* ``vulnerability-scan`` and ``vulnerabilities`` (with ``scan``): the image's packages
  against OSV advisories (:mod:`.scan`);

The image is built and the container started once per session, also under xdist
(:meth:`RunDir.run_once`); tests in the gate get the fixtures ``release_container``,
``release_base_url``, ``release_container_logs`` and ``release_dependency``
(testcontainers, local images).  The container's logs are attached to every failing
report of the gate.  Everything the run creates carries the label
``pytest-release.run=<run id>`` and is removed at the end of the session by the process
that sees the whole session (the only one, or the xdist controller), passed or failed.

A default gate (no docker key configured) without a Dockerfile generates no item: the
project has no image to check.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_release.gates.docker.config import KIND, DockerGateConfig
from pytest_release.gates.docker.fixtures import (
    release_base_url,
    release_container,
    release_container_logs,
    release_dependency,
)
from pytest_release.gates.docker.items import DockerCheckItem
from pytest_release.gates.docker.state import STATE_KEY, docker_gates, docker_state
from pytest_release.gates.gate_hooks import gate_kind_hooks
from pytest_release.gating.gate_node import GateNode

__all__ = [
    "release_base_url",
    "release_container",
    "release_container_logs",
    "release_dependency",
]  # fixtures of the gate's tests, registered with this plugin


# -- hooks ---------------------------------------------------------------------------------
def _dockerfile_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _instruction_line(lines: list[str], *instructions: str) -> int | None:
    for keyword in instructions:
        for number, line in enumerate(lines, start=1):
            words = line.split(None, 1)
            if words and words[0].upper() == keyword:
                return number
    return None


def _items(gate_node: GateNode, gate: DockerGateConfig) -> list[pytest.Item]:
    run = gate_node.run
    dockerfile = run.rootdir / gate.context / gate.dockerfile
    if gate.build and not dockerfile.is_file() and not gate.explicitly_configured():
        return []
    config_file = Path(run.config.source)
    source = dockerfile if gate.build else (config_file if config_file.is_file() else None)
    lines = _dockerfile_lines(dockerfile) if gate.build else []
    checks: list[tuple[str, tuple[str, ...]]] = [
        ("build" if gate.build else "image", ("FROM",)),
        ("starts-and-stays-up", ("CMD", "ENTRYPOINT", "FROM")),
        ("health", ("HEALTHCHECK", "EXPOSE", "CMD", "FROM")),
    ]
    if gate.require_non_root or gate.user is not None:
        checks.append(("non-root-user", ("USER", "FROM")))
    if gate.required_env or gate.env_endpoint is not None:
        checks.append(("required-env", ("ENV", "CMD", "FROM")))
    if gate.max_image_size_mb is not None:
        checks.append(("image-size", ("FROM",)))
    checks.append(("no-secrets", ("ENV", "LABEL", "ARG", "FROM")))
    if gate.scan is not None:
        checks += [("vulnerability-scan", ("FROM",)), ("vulnerabilities", ("FROM",))]
    if gate.push:
        checks.append(("push", ("FROM",)))
    return [
        DockerCheckItem.from_parent(
            gate_node,
            name=name,
            check=name,
            source_path=source,
            source_line=_instruction_line(lines, *instructions) if lines else None,
        )
        for name, instructions in checks
    ]


pytest_release_gate_kinds, pytest_release_gate_items = gate_kind_hooks(
    KIND, DockerGateConfig, _items
)


def pytest_report_header(config: pytest.Config) -> list[str]:
    gates = docker_gates(config)
    state = docker_state(config)
    if not gates or state is None or state.session.is_worker:
        return []
    from pytest_release.gates.docker.engine import LABEL_RUN

    return [f"docker gate(s) {', '.join(gates)}: label {LABEL_RUN}={state.run_id}"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        _attach_logs(item, report)
    return report


_ATTACHED = pytest.StashKey[bool]()


def _attach_logs(item: pytest.Item, report: pytest.TestReport) -> None:
    from pytest_release.stage.session import GATE_KEY

    gate = item.stash.get(GATE_KEY, None)
    state = docker_state(item.config)
    if gate is None or state is None or item.stash.get(_ATTACHED, False):
        return
    if not isinstance(state.run.config.gates.get(gate), DockerGateConfig):
        return
    logs = state.logs(gate)
    if logs is None:
        return
    name, text = logs
    item.stash[_ATTACHED] = True
    report.sections.append((f"docker logs: {name}", text))


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is not None and not state.session.is_worker:
        state.cleanup()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and not state.session.is_worker:
        state.cleanup()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash.get(STATE_KEY, None)
    if state is not None and state.cleanup_message:
        terminalreporter.write_line(state.redact(state.cleanup_message), red=True)

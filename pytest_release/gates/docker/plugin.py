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
* ``no-secrets``: no secret-looking value in the image's ENV or labels (shown redacted).

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

import hashlib
import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.errors import GateCheckFailed, GateSetupError
from pytest_release.gate_node import GateItem, GateNode
from pytest_release.gates.docker.config import KIND, DockerGateConfig
from pytest_release.gates.docker.secrets import name_matches, parse_env, scan
from pytest_release.redact import Redactor
from pytest_release.stage_session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.config import GateConfig
    from pytest_release.gates.docker.dependencies import Dependency
    from pytest_release.gates.docker.engine import ContainerInfo, ImageInfo
    from pytest_release.stage_session import StageSession

_BUILD_LOG_LINES = 40


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
        self.redact = _redactor(session, self.run.config.gates)

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

    def image(self, gate_name: str) -> ImageInfo:
        from pytest_release.gates.docker.engine import (
            DockerUnavailable,
            ImageInfo,
            build_image,
            find_image,
            missing_build_input,
        )

        if gate_name in self.images:
            return self.images[gate_name]
        gate = self.gate(gate_name)
        ref = self.image_ref(gate_name)

        def compute() -> dict[str, Any]:
            context = self.run.rootdir / gate.context
            problem = missing_build_input(context, gate.dockerfile) if gate.build else None
            if problem is not None:
                return ImageInfo(ok=False, ref=ref, error=problem).to_json()
            try:
                client = self.client()
            except DockerUnavailable as exc:
                return ImageInfo(ok=False, ref=ref, error=str(exc)).to_json()
            if not gate.build:
                return find_image(client, ref).to_json()
            return build_image(
                client,
                context=context,
                dockerfile=gate.dockerfile,
                build_args=gate.build_args,
                ref=ref,
                labels=self.labels(None, removable=not gate.keep_image),
            ).to_json()

        data = self.session.run_dir.run_once(f"docker-gate:{gate_name}:image", compute)
        self.images[gate_name] = ImageInfo.from_json(data)
        return self.images[gate_name]

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

        if gate_name in self.containers:
            return self.containers[gate_name]
        gate = self.gate(gate_name)
        name = self.container_name(gate_name)

        def compute() -> dict[str, Any]:
            image = self.image(gate_name)
            if not image.ok:
                return ContainerInfo(
                    ok=False,
                    name=name,
                    error=f"no container: the image {image.ref} is not available (see the "
                    f"'build' check): {image.error.splitlines()[0] if image.error else ''}",
                ).to_json()
            env, missing = self.container_env(gate_name)
            if missing:
                return ContainerInfo(
                    ok=False,
                    name=name,
                    error=f"pass_env names variables that are not set in the environment of "
                    f"pytest: {', '.join(missing)}; export them or remove them from "
                    f"[tool.pytest-release.gates.{gate_name}].pass_env",
                ).to_json()
            try:
                client = self.client()
            except DockerUnavailable as exc:
                return ContainerInfo(ok=False, name=name, error=str(exc)).to_json()
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
            ).to_json()

        data = self.session.run_dir.run_once(f"docker-gate:{gate_name}:container", compute)
        self.containers[gate_name] = ContainerInfo.from_json(data)
        return self.containers[gate_name]

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


def _redactor(session: StageSession, gates: Mapping[str, GateConfig]) -> Redactor:
    """The stage's redactor plus values the docker gates pass that look secret."""
    values: list[str] = list(session.redact.values)
    for gate in gates.values():
        if not isinstance(gate, DockerGateConfig):
            continue
        values.extend(os.environ.get(name, "") for name in gate.pass_env)
        for mapping in (gate.env, gate.build_args):
            values.extend(v for k, v in mapping.items() if name_matches(k, gate.secret_names))
    return Redactor.from_env((), environ={}, extra_values=values)


_STATE = pytest.StashKey[DockerGateState]()


def _state(config: pytest.Config) -> DockerGateState | None:
    state = config.stash.get(_STATE, None)
    if state is None:
        session = get_stage_session(config)
        if session is None:
            return None
        state = DockerGateState(session)
        config.stash[_STATE] = state
    return state


def _docker_gates(config: pytest.Config) -> list[str]:
    state = _state(config)
    if state is None:
        return []
    return [
        g for g in state.run.plan.order if isinstance(state.run.config.gates[g], DockerGateConfig)
    ]


# -- hooks ---------------------------------------------------------------------------------
@pytest.hookimpl
def pytest_release_gate_kinds() -> dict[str, type[GateConfig]]:
    return {KIND: DockerGateConfig}


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


@pytest.hookimpl
def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
    gate = gate_node.gate
    if not isinstance(gate, DockerGateConfig):
        return None
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
    if gate.push:
        checks.append(("push", ("FROM",)))
    items: list[pytest.Item] = []
    for name, instructions in checks:
        items.append(
            DockerCheckItem.from_parent(
                gate_node,
                name=name,
                check=name,
                source_path=source,
                source_line=_instruction_line(lines, *instructions) if lines else None,
            )
        )
    return items


def pytest_report_header(config: pytest.Config) -> list[str]:
    gates = _docker_gates(config)
    state = _state(config)
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
    from pytest_release.stage_session import GATE_KEY

    gate = item.stash.get(GATE_KEY, None)
    state = _state(item.config)
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
    state = session.config.stash.get(_STATE, None)
    if state is not None and not state.session.is_worker:
        state.cleanup()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None and not state.session.is_worker:
        state.cleanup()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash.get(_STATE, None)
    if state is not None and state.cleanup_message:
        terminalreporter.write_line(state.redact(state.cleanup_message), red=True)


# -- items ---------------------------------------------------------------------------------
class DockerCheckItem(GateItem):
    """One check of the docker gate; ``check`` names the method of :class:`_Checks`."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, GateNode)
        state = _state(self.config)
        if state is None:  # pragma: no cover - the gate only exists in stage mode
            raise GateCheckFailed("the docker gate runs only with --stage")
        _Checks(state, parent.gate_name, self).run(self.check)


class _Checks:
    def __init__(self, state: DockerGateState, gate_name: str, item: pytest.Item) -> None:
        self.state = state
        self.gate_name = gate_name
        self.gate = state.gate(gate_name)
        self.item = item

    def run(self, check: str) -> None:
        method: Callable[[], None] = getattr(self, "check_" + check.replace("-", "_"))
        method()

    def fail(self, message: str) -> None:
        raise GateCheckFailed(self.state.redact(message))

    def image_or_fail(self) -> ImageInfo:
        image = self.state.image(self.gate_name)
        if not image.ok:
            self.fail(f"the image {image.ref} is not available (see 'build'): {image.error}")
        return image

    # -- checks --
    def check_build(self) -> None:
        image = self.state.image(self.gate_name)
        if not image.ok:
            tail = "\n".join(image.log.splitlines()[-_BUILD_LOG_LINES:])
            log = f"\nbuild log (last {_BUILD_LOG_LINES} lines):\n{tail}" if tail else ""
            self.fail(f"building {image.ref} failed: {image.error}{log}")
        self.item.user_properties.append(("docker_image", image.ref))
        self.item.user_properties.append(("docker_image_id", image.image_id))

    def check_image(self) -> None:
        self.check_build()

    def check_push(self) -> None:
        from pytest_release.gates.docker.engine import push_image, repository_of

        image = self.image_or_fail()
        run = self.state.run
        values = {
            "repository": repository_of(image.ref),
            "release_id": run.release_id,
            "release_short": run.release_id[:12],
            "stage": run.stage,
        }
        try:
            refs = [image.ref, *(tag.format(**values) for tag in self.gate.push_tags)]
        except (KeyError, IndexError) as exc:
            self.fail(f"push_tags: unknown placeholder {exc}; use {', '.join(values)}")
        try:
            pushed = push_image(self.state.client(), image.image_id, list(dict.fromkeys(refs)))
        except GateSetupError as exc:
            self.fail(f"{exc}; is the registry running and reachable from the daemon?")
        digests = {digest for _, digest in pushed}
        if len(digests) != 1 or "" in digests:
            self.fail(f"the registry returned different or no digests: {pushed}")
        for ref, digest in pushed:
            self.item.user_properties.append(("pushed", f"{ref}@{digest}"))

    def check_starts_and_stays_up(self) -> None:
        info = self.state.container(self.gate_name)
        if not info.ok:
            self.fail(info.error)
        container = self.state.running_container(self.gate_name)
        container.reload()
        self.item.user_properties.append(("docker_container", info.name))
        self.item.user_properties.append(("docker_healthy_by", ", ".join(info.healthy_by)))
        if container.status != "running":
            code = (container.attrs.get("State") or {}).get("ExitCode")
            self.fail(
                f"container {info.name} was healthy ({', '.join(info.healthy_by)}) but is "
                f"{container.status} now (exit code {code})"
            )

    def check_health(self) -> None:
        from pytest_release.gates.docker.engine import http_probe

        image = self.image_or_fail()
        if not image.has_healthcheck and self.gate.health_path is None:
            self.fail(
                "nothing tells whether the service is healthy: the image has no HEALTHCHECK "
                "and health_path is not set; set health_path and port in "
                f"[tool.pytest-release.gates.{self.gate_name}] or add a HEALTHCHECK to the "
                "Dockerfile"
            )
        container = self.state.running_container(self.gate_name)
        problems = []
        if image.has_healthcheck:
            # The container may have been found healthy by its HTTP probe before the
            # HEALTHCHECK's first run: wait (within health_timeout) while it is starting.
            deadline = time.monotonic() + self.gate.health_timeout
            while True:
                container.reload()
                health = (container.attrs.get("State") or {}).get("Health") or {}
                if health.get("Status") != "starting" or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            if health.get("Status") != "healthy":
                problems.append(f"HEALTHCHECK status is {health.get('Status') or 'unknown'}")
        if self.gate.health_path is not None:
            ok, description = http_probe(
                f"http://127.0.0.1:{self.gate.port}{self.gate.health_path}"
            )
            if not ok:
                problems.append(description)
        if problems:
            self.fail("the service is not healthy: " + "; ".join(problems))

    def check_non_root_user(self) -> None:
        from pytest_release.gates.docker.engine import is_root, process_uids

        image = self.image_or_fail()
        declared = image.user or "(not set: root)"
        info = self.state.container(self.gate_name)
        problems = []
        if info.ok:
            processes = process_uids(self.state.running_container(self.gate_name))
            root = [f"{cmd} (uid {uid})" for uid, cmd in processes if uid == 0]
            if self.gate.require_non_root and root:
                problems.append(
                    f"processes run as root: {', '.join(root)}; the image's USER is {declared}"
                )
            expected = self.gate.user
            if expected is not None and expected.isdigit():
                other = [f"{cmd} (uid {uid})" for uid, cmd in processes if str(uid) != expected]
                if other:
                    problems.append(f"processes not running as uid {expected}: {', '.join(other)}")
        elif self.gate.require_non_root and is_root(image.user):
            problems.append(f"the image's USER is {declared} (the container did not start)")
        expected = self.gate.user
        if (
            expected is not None
            and not expected.isdigit()
            and image.user.split(":", 1)[0] != expected
        ):
            problems.append(f"the image's USER is {declared}, expected {expected!r}")
        if problems:
            hint = "\nAdd `USER <non-root user>` (e.g. `USER 10001`) to the Dockerfile"
            self.fail("wrong container user: " + "; ".join(problems) + hint)

    def check_required_env(self) -> None:
        container = self.state.running_container(self.gate_name)
        env = parse_env((container.attrs.get("Config") or {}).get("Env") or ())
        problems = [
            f"{name} is not set in the container"
            for name in self.gate.required_env
            if not env.get(name)
        ]
        if self.gate.env_endpoint is not None:
            problems.extend(self._endpoint_env())
        if problems:
            self.fail(
                "required configuration is missing: " + "; ".join(problems) + "\nSet them "
                f"with env/pass_env in [tool.pytest-release.gates.{self.gate_name}] or ENV "
                "in the Dockerfile"
            )

    def _endpoint_env(self) -> list[str]:
        import httpx

        url = f"http://127.0.0.1:{self.gate.port}{self.gate.env_endpoint}"
        try:
            response = httpx.get(url, timeout=5.0, trust_env=False)
            seen = response.json()
        except (httpx.HTTPError, json.JSONDecodeError, ValueError) as exc:
            return [f"GET {url} did not return JSON: {type(exc).__name__}: {exc}"]
        if not isinstance(seen, dict):
            return [f"GET {url} returned {type(seen).__name__}, expected a JSON object"]
        configured, _ = self.state.container_env(self.gate_name)
        problems = [
            f"{name} is not visible at {url}"
            for name in self.gate.required_env
            if name not in seen or seen[name] in (None, "")
        ]
        for name, value in configured.items():
            if name not in seen and name not in self.gate.required_env:
                problems.append(f"{name} (configured) is not visible at {url}")
            elif name in seen and str(seen[name]) != value:
                problems.append(
                    f"{name} is {seen[name]!r} at {url}, configured {value!r} (not honoured)"
                )
        return problems

    def check_image_size(self) -> None:
        image = self.image_or_fail()
        budget = self.gate.max_image_size_mb
        assert budget is not None
        size_mb = image.size / 1_000_000
        self.item.user_properties.append(("docker_image_size_mb", f"{size_mb:.1f}"))
        if size_mb > budget:
            self.fail(
                f"the image {image.ref} is {size_mb:.1f} MB, over the budget of {budget:g} MB "
                "(max_image_size_mb); use a smaller base image or a multi-stage build"
            )

    def check_no_secrets(self) -> None:
        image = self.image_or_fail()
        findings = scan(
            parse_env(image.env), image.labels, self.gate.secret_names, self.gate.allowed_env
        )
        if findings:
            listed = "\n".join(f"  {finding.describe()}" for finding in findings)
            self.fail(
                f"the image {image.ref} carries secret-looking values:\n{listed}\n"
                "Pass secrets at run time (env/pass_env, a secret store), not with ENV, ARG "
                "or LABEL; exempt a harmless name with allowed_env"
            )


# -- fixtures for tests in the gate -------------------------------------------------------
def _target(request: pytest.FixtureRequest) -> tuple[DockerGateState, str]:
    from pytest_release.stage_session import GATE_KEY

    state = _state(request.config)
    if state is None:
        pytest.fail("the release_* docker fixtures need --stage", pytrace=False)
    gate = request.node.stash.get(GATE_KEY, None)
    if gate is not None and isinstance(state.run.config.gates.get(gate), DockerGateConfig):
        return state, gate
    gates = _docker_gates(request.config)
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

"""The docker gate's checks, one item each (the list is in :mod:`.plugin`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.errors import GateCheckFailed, GateSetupError
from pytest_release.gates.docker.secrets import parse_env, scan
from pytest_release.gates.docker.state import BUILD_LOG_LINES, DockerGateState, docker_state
from pytest_release.gating.gate_node import GateItem, GateNode

if TYPE_CHECKING:
    from pytest_release.gates.docker.engine import ImageInfo


# -- items ---------------------------------------------------------------------------------
class DockerCheckItem(GateItem):
    """One check of the docker gate; ``check`` names the method of :class:`_Checks`."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, GateNode)
        state = docker_state(self.config)
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
            tail = "\n".join(image.log.splitlines()[-BUILD_LOG_LINES:])
            log = f"\nbuild log (last {BUILD_LOG_LINES} lines):\n{tail}" if tail else ""
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

    def check_vulnerability_scan(self) -> None:
        from pytest_release.gates.docker.scan import check_scan

        check_scan(self.state, self.gate_name, self.item)

    def check_vulnerabilities(self) -> None:
        from pytest_release.gates.docker.scan import check_findings

        check_findings(self.state, self.gate_name, self.item)

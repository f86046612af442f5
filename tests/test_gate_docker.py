"""The docker gate against the real daemon: build, run, health, image checks, cleanup.

Builds are slow with the vfs storage driver (every Dockerfile instruction is a container
commit), so the variants share one session of three independent gates (``after = []``):
a healthy image built by the gate, a faulty one (root, a secret in its environment)
used as is (``build = false``), and the healthy image with a container that exits at
once.  A second session runs the healthy gate under ``-n 2``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from pytest_release.config.release import load_release_config
from pytest_release.errors import ReleaseConfigError
from pytest_release.gates import builtin_gate_kinds
from pytest_release.gates.docker.config import DockerGateConfig
from pytest_release.gates.docker.secrets import scan
from tests.support.junit import Case, read_cases
from tests.support.pipelines import UNIT_TEST
from tests.support.spine import project, run_stage

DATA = Path(__file__).parent / "data" / "docker"
SECRET_VALUE = "tok-6f1c2d9e8b7a5c4d"
RUN_LABEL = "pytest-release.run"
RELEASE_LABEL = "pytest-release.release"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def release_id() -> str:
    return f"docker-{uuid.uuid4().hex[:10]}"


def copy_service(pytester: pytest.Pytester) -> None:
    shutil.copytree(DATA, pytester.path / "service")


def service_gate(name: str, port: int, stay_up: str, env: str = "") -> str:
    """The table of a docker gate ``name`` that builds the copied service (``service/``)
    and runs it on ``port`` (healthy at /health) for ``stay_up``; ``env`` adds variables
    to its PORT. For a TOML string indented by 8 spaces."""
    return f"""[gates.{name}]
        kind = "docker"
        context = "service"
        port = {port}
        health_path = "/health"
        stay_up = "{stay_up}"
        env = {{ PORT = "{port}"{env} }}"""


def labelled(docker_client: Any, label: str) -> tuple[list[str], list[str]]:
    """Names of containers and ids of images carrying ``label`` (``key=value``)."""
    selector = {"label": label}
    containers = [c.name for c in docker_client.containers.list(all=True, filters=selector)]
    images = [i.id for i in docker_client.images.list(all=True, filters=selector)]
    return containers, images


def container_creates(docker_client: Any, since: float, release: str) -> list[dict[str, Any]]:
    events = docker_client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create", "label": f"{RELEASE_LABEL}={release}"},
    )
    return [e for e in events if e["Actor"]["Attributes"]["name"].startswith("pytest-release-")]


def run_label(stdout: str) -> str:
    for line in stdout.splitlines():
        if f"label {RUN_LABEL}=" in line:
            return line.rsplit("=", 1)[1].strip()
    raise AssertionError(f"no run label in the report header:\n{stdout}")


def cases(report: Path) -> dict[str, Case]:
    return {f"{c.classname}::{c.name}": c for c in read_cases(report)}


# -- configuration (no daemon needed) ------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"helth_path": "/health"}, "gates.img.helth_path: unknown key (value '/health')"),
        ({"port": 70000}, "gates.img.port = 70000: Input should be less than or equal to 65535"),
        ({"port": 8000, "health_path": "health"}, "must start with '/', e.g. '/health'"),
        ({"health_path": "/health"}, "health_path = '/health' needs 'port'"),
        ({"required_env": ["APP-ENV"]}, "not environment variable names: 'APP-ENV'"),
        ({"health_timeout": "soon"}, "expected a duration such as 30, '30s'"),
    ],
)
def test_bad_docker_gate_config_is_named(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ReleaseConfigError) as excinfo:
        load_release_config(
            {"gates": {"img": {"kind": "docker", **table}}}, "pyproject.toml", builtin_gate_kinds()
        )
    assert message in str(excinfo.value)
    assert "pyproject.toml" in str(excinfo.value)


def test_secret_scan_patterns_and_exemptions() -> None:
    env = {
        "API_TOKEN": "abc123",
        "DB_PASSWORD": "",  # empty: not a secret
        "GPG_KEY": "A035C8C19219BA821ECEA86B64E628F8D684696D",
        "NOTIFY": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
        "PATH": "/usr/bin",
    }
    labels = {"pytest-release.run": "secret-looking-but-ours", "maintainer": "ghp_" + "a" * 30}
    findings = scan(env, labels, DockerGateConfig().secret_names, allowed=["GPG_KEY"])
    described = [f.describe() for f in findings]
    assert described == [
        "ENV API_TOKEN=*** (6 chars; name matches *TOKEN*)",
        "ENV NOTIFY=*** (51 chars; value is a Slack webhook URL)",
        "LABEL maintainer=*** (34 chars; value is shaped like a token)",
    ]
    assert not any("abc123" in d or "hooks.slack" in d for d in described)


def test_default_gate_without_dockerfile_generates_nothing(pytester: pytest.Pytester) -> None:
    # The built-in "docker" gate (kind docker) in a project without a Dockerfile.
    project(
        pytester,
        '[stages.check]\ngates = ["unit", "docker"]\n',
        **UNIT_TEST,
    )
    result = run_stage(pytester, "check")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gate docker: empty*"])
    # An empty gate in a full run vouches for nothing: the stage fails and says how to
    # allow it (issue 24).
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "gate 'docker' selected no test" in result.stdout.str()
    assert "set allow_empty = true in [tool.pytest-release.gates.docker]" in result.stdout.str()


def test_configured_gate_with_missing_dockerfile_fails(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        [gates.docker]
        kind = "docker"
        context = "nowhere"
        [stages.ship]
        gates = ["docker"]
        """,
    )
    result = run_stage(pytester, "ship")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*the build context */nowhere does not exist; set context (relative to the rootdir)*"]
    )


def test_unreachable_daemon_fails_naming_docker_host(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_service(pytester)
    project(
        pytester,
        """
        [gates.docker]
        kind = "docker"
        context = "service"
        [stages.ship]
        gates = ["docker"]
        """,
    )
    socket_path = pytester.path / "no-daemon.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    result = run_stage(pytester, "ship")
    assert result.ret == 1
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(
        [
            "*_ build _*",
            f"*cannot reach the Docker daemon at DOCKER_HOST=unix://{socket_path}*",
            "*Start the daemon*set DOCKER_HOST*",
        ]
    )
    result.stdout.fnmatch_lines(["*release stage ship: failed*"])


# -- against the daemon --------------------------------------------------------------------
@pytest.fixture(scope="session")
def bad_image(
    docker_client: Any, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The test service with faults (``Dockerfile.bad``), built once per test run.

    It doubles as a warm build cache for the gate's own builds of ``Dockerfile`` (same
    first lines): with vfs every Dockerfile instruction costs a container commit, seconds
    each under load.  The gates still build; the legacy builder reuses the cached steps.
    Under xdist the second worker's build is all cache hits (a file lock orders them);
    each worker removes its own tag at the end.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    tag = f"pytest-release-test/docker-gate-bad:{run[:12]}-{worker}"  # a tag per worker
    with FileLock(str(tmp_path_factory.getbasetemp().parent / "docker-gate-bad.lock")):
        docker_client.images.build(
            path=str(DATA), dockerfile="Dockerfile.bad", tag=tag, rm=True, forcerm=True
        )
    yield tag
    docker_client.images.remove(tag)


SERVICE_TESTS = """
import json, os
import httpx

LOG = os.path.join(os.path.dirname(__file__), "seen.jsonl")

def record(container):
    with open(LOG, "a") as handle:
        handle.write(json.dumps({
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "container": container.id,
        }) + "\\n")

def test_root_page(release_base_url, release_container):
    record(release_container)
    assert httpx.get(release_base_url + "/").text == "hello from the test service"

def test_container_and_logs(release_container, release_container_logs):
    record(release_container)
    assert release_container.status == "running"
    assert "app: listening on 127.0.0.1" in release_container_logs()
"""

DEPENDENCY_TEST = """
import httpx

def test_dependency_container(release_dependency, release_base_url):
    dependency = release_dependency(
        "local/python:bookworm",
        command=["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
        port={port},
        ready_path="/",
    )
    assert httpx.get(dependency.base_url + "/").status_code == 200
    assert dependency.container.get_wrapped_container().labels["pytest-release.gate"] == "docker"
"""


def test_healthy_and_failing_images_in_one_session(
    pytester: pytest.Pytester, docker_client: Any, base_image: str, bad_image: str
) -> None:
    ports = {name: free_port() for name in ("docker", "bad", "exit", "dep")}
    copy_service(pytester)
    project(
        pytester,
        f"""
        {service_gate("docker", ports["docker"], "1s", ', APP_ENV = "ci"')}
        required_env = ["APP_ENV", "PORT"]
        env_endpoint = "/env"
        max_image_size_mb = 400
        paths = ["tests/docker/*"]
        after = []

        [gates.docker-bad]
        kind = "docker"
        build = false
        tag = "{bad_image}"
        env = {{ PORT = "{ports["bad"]}" }}
        port = {ports["bad"]}
        stay_up = "1s"
        after = []

        [gates.docker-exit]
        kind = "docker"
        context = "service"
        port = {ports["exit"]}
        health_path = "/health"
        env = {{ PORT = "{ports["exit"]}", APP_MODE = "exit" }}
        after = []

        [stages.ship]
        gates = ["docker", "docker-bad", "docker-exit"]
        """,
        **{
            "tests/docker/test_service.py": SERVICE_TESTS,
            "tests/docker/test_dependency.py": DEPENDENCY_TEST.replace("{port}", str(ports["dep"])),
        },
    )
    release = release_id()
    started = time.time()
    result = run_stage(pytester, "ship", "-rA", release=release)
    stdout = result.stdout.str()
    assert result.ret == 1, stdout
    result.assert_outcomes(passed=16, failed=4)
    failed = sorted(line.split()[1] for line in stdout.splitlines() if line.startswith("FAILED"))
    assert failed == [
        "gate:docker-bad::no-secrets",
        "gate:docker-bad::non-root-user",
        "gate:docker-exit::health",
        "gate:docker-exit::starts-and-stays-up",
    ]
    # Root: the processes are read from the daemon, uid 0 named.
    result.stdout.fnmatch_lines(
        ["*wrong container user: processes run as root: *python3 (uid 0)*the image's USER is 0*"]
    )
    # Secret: named, redacted, never printed.
    result.stdout.fnmatch_lines(["*ENV API_TOKEN=*** (20 chars; name matches *TOKEN*)*"])
    assert SECRET_VALUE not in stdout
    # Exit: the exit code in the failure, the container's logs attached as a section.
    result.stdout.fnmatch_lines(
        [
            "*container pytest-release-*-docker-exit exited with code 3 before it became healthy*",
            "*- docker logs: pytest-release-*-docker-exit -*",
            "app: exiting on purpose (APP_MODE=exit)",
        ]
    )
    report = pytester.path / "reports" / "ship.xml"
    assert SECRET_VALUE not in report.read_text(encoding="utf-8")
    by_name = cases(report)
    exit_case = by_name["docker-exit.gate:docker-exit::starts-and-stays-up"]
    assert "app: exiting on purpose" in exit_case.system_out
    build_props = by_name["docker.gate:docker::build"].properties
    assert build_props["docker_image"] == f"pytest-release/docker:{run_label(stdout)}"
    healthy_by = {
        gate: by_name[f"{gate}.gate:{gate}::starts-and-stays-up"].properties["docker_healthy_by"]
        for gate in ("docker", "docker-bad")
    }
    assert healthy_by == {
        "docker": f"HEALTHCHECK healthy, GET http://127.0.0.1:{ports['docker']}/health "
        "answered 2xx",
        "docker-bad": "HEALTHCHECK healthy",  # no health_path: the HEALTHCHECK alone
    }

    # Once per session: one container per gate (the dependency's name is its own).
    creates = container_creates(docker_client, started, release)
    per_gate = Counter(e["Actor"]["Attributes"]["pytest-release.gate"] for e in creates)
    assert per_gate == {"docker": 1, "docker-bad": 1, "docker-exit": 1}
    # Cleanup after a failed run: nothing with the run's labels; images the run did not
    # build (build = false) are kept.
    assert labelled(docker_client, f"{RELEASE_LABEL}={release}") == ([], [])
    assert labelled(docker_client, f"{RUN_LABEL}={run_label(stdout)}") == ([], [])
    docker_client.images.get(bad_image)


# Records which worker ran which item (the gate's own checks included).
WHERE = """
import json, os

def pytest_runtest_setup(item):
    with open(os.path.join(str(item.config.rootpath), "ran.jsonl"), "a") as handle:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        handle.write(json.dumps([worker, item.nodeid]) + "\\n")
"""


def test_healthy_image_built_and_started_once_under_xdist(
    pytester: pytest.Pytester, docker_client: Any, base_image: str, bad_image: str
) -> None:
    port = free_port()
    copy_service(pytester)
    more = "\n".join(
        f"def test_more_{n}(release_container):\n    record(release_container)\n" for n in range(4)
    )
    project(
        pytester,
        f"""
        {service_gate("docker", port, "1s")}
        paths = ["tests/docker/*"]

        [stages.ship]
        gates = ["docker"]
        """,
        **{"tests/docker/test_service.py": SERVICE_TESTS + "\n" + more, "conftest.py": WHERE},
    )
    release = release_id()
    started = time.time()
    result = run_stage(pytester, "ship", "-n", "2", release=release)
    result.assert_outcomes(passed=5 + 6)
    label = run_label(result.stdout.str())
    seen = [
        json.loads(line)
        for line in (pytester.path / "tests" / "docker" / "seen.jsonl").read_text().splitlines()
    ]
    # The gate's checks ran on both workers (each needs the image, most the container)...
    ran = [json.loads(line) for line in (pytester.path / "ran.jsonl").read_text().splitlines()]
    assert {worker for worker, nodeid in ran if nodeid.startswith("gate:docker::")} == {
        "gw0",
        "gw1",
    }
    # ...yet one container served every test, and the daemon created and tagged once.
    assert len({s["container"] for s in seen}) == 1
    assert len(container_creates(docker_client, started, release)) == 1
    tags = docker_client.events(
        since=int(started) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "image", "event": "tag"},
    )
    built = [e for e in tags if e["Actor"]["Attributes"].get("name", "").endswith(label)]
    assert len(built) == 1, built
    assert labelled(docker_client, f"{RUN_LABEL}={label}") == ([], [])
    assert labelled(docker_client, f"{RELEASE_LABEL}={release}") == ([], [])

"""The docker gate pushes the release image to a real registry (Debian's
docker-registry on 127.0.0.1): the build stage of the pipeline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.spine import project, run_stage
from tests.test_gate_docker import DATA, free_port, service_gate

SCRIPT = Path(__file__).parent.parent / "scripts" / "start-registry.sh"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry started for these tests on a free port; stopped by its PID."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed: apt-get install -y docker-registry")
    port = free_port()
    state = tmp_path_factory.mktemp("registry")
    env = {**os.environ, "REGISTRY_DIR": str(state)}
    address = subprocess.run(
        ["bash", str(SCRIPT), str(port)], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield address
    finally:
        pid = int((state / "registry.pid").read_text())
        os.kill(pid, signal.SIGTERM)


def tags(registry: str, repository: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list") as response:
        found: list[str] = json.load(response).get("tags") or []
        return sorted(found)


def _push_project(pytester: pytest.Pytester, registry_port_hint: str) -> None:
    shutil.copytree(DATA, pytester.path / "service")
    port = free_port()
    project(
        pytester,
        f"""
        {service_gate("image", port, "0s")}
        push = true
        push_tags = ["{{repository}}:{{release_short}}", "{{repository}}:latest"]
        [stages.build]
        gates = ["image"]
        requires = []
        """,
    )


def test_build_stage_pushes_image_and_tags(
    pytester: pytest.Pytester, registry: str, docker_client: Any, base_image: str
) -> None:
    _push_project(pytester, registry)
    image = f"{registry}/shop:release-7"
    release = "0123456789abcdef0123"
    result = run_stage(pytester, "build", f"--image={image}", release=release)
    result.assert_outcomes(passed=6)
    assert tags(registry, "shop") == ["0123456789ab", "latest", "release-7"]
    pushed = [line for line in result.stdout.lines if "push" in line]
    assert pushed, result.stdout.str()
    junit = (pytester.path / "reports" / "build.xml").read_text()
    assert f'value="{image}@sha256:' in junit


def test_push_to_a_registry_that_is_down_fails_clearly(
    pytester: pytest.Pytester, docker_client: Any, base_image: str
) -> None:
    _push_project(pytester, "")
    closed = f"127.0.0.1:{free_port()}"
    result = run_stage(pytester, "build", f"--image={closed}/shop:release-8", release="down1")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [f"*pushing {closed}/shop:release-8 failed*is the registry running and reachable*"]
    )

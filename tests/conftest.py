"""Shared fixtures for pytest-release's own test suite.

Docker
------
Tests that need Docker use the session-scoped ``docker_client`` fixture (and
``base_image`` for ``local/python:bookworm``).  CI starts the daemon and builds the base
image before the tests (``scripts/start-docker.sh``, ``scripts/build-base-image.sh``), so
an unreachable daemon or a missing base image is a test *failure* naming the cause and the
fix.  On a machine without Docker, set ``PYTEST_RELEASE_ALLOW_NO_DOCKER=1`` to turn those
failures into skips (the reason is still printed with ``-rs``).
"""

from __future__ import annotations

import http.cookiejar  # noqa: F401  (see below)
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.heavy_first import MARKER_HELP, heaviest_first, small_chunks
from tests.support.spine import XDIST_MODES

# Loaded once, before any in-process pytester run: a run imports httpx (which imports
# http.cookiejar) and pytester then drops every module the run loaded, so a later
# `import http.cookiejar` would make a second module whose CookieJar class is not the one
# requests (docker's client) already holds ("You can only merge into CookieJar").

ALLOW_NO_DOCKER_ENV = "PYTEST_RELEASE_ALLOW_NO_DOCKER"
BASE_IMAGE = "local/python:bookworm"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    small_chunks(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    heaviest_first(items)


def _docker_unavailable(reason: str) -> None:
    if os.environ.get(ALLOW_NO_DOCKER_ENV) == "1":
        pytest.skip(f"Docker unavailable ({ALLOW_NO_DOCKER_ENV}=1): {reason}")
    pytest.fail(
        f"{reason}\nDocker is required by these tests; set {ALLOW_NO_DOCKER_ENV}=1 to skip "
        "them on a machine without Docker.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A ``docker.DockerClient`` for the local daemon (fails loudly when unreachable)."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        docker = None
    if docker is None:
        _docker_unavailable(
            "the 'docker' Python package is not installed: pip install -e '.[test]'"
        )
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    error: str | None = None
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        error = str(exc)
    if error is not None:
        _docker_unavailable(
            f"the Docker daemon at DOCKER_HOST={host} does not answer ({error}); "
            "start it with: bash scripts/start-docker.sh"
        )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The registry-free base image; fails with the command that builds it."""
    from docker.errors import ImageNotFound

    try:
        docker_client.images.get(BASE_IMAGE)
    except ImageNotFound:
        _docker_unavailable(
            f"the base image {BASE_IMAGE} does not exist; build it with: "
            "bash scripts/build-base-image.sh"
        )
    return BASE_IMAGE


@pytest.fixture(params=XDIST_MODES)
def xdist(request: pytest.FixtureRequest) -> list[str]:
    """The extra arguments of a stage run: a test that takes ``xdist`` runs twice, once
    serially (``[]``) and once under ``-n 2``, since what a stage records must not depend
    on where its items ran.  (``@pytest.mark.parametrize("xdist", XDIST_MODES)`` on a test
    does the same.)"""
    extra: list[str] = request.param
    return extra

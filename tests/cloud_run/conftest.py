"""Fixtures of the Cloud Run tests: the Admin API emulator (a fake, see
:mod:`tests.cloud_run.emulator`) with one service, and the platform pointed at it
through the real ``google-cloud-run`` client library."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_release.canary.platforms.cloud_run.config import (
    CloudRunPlatformConfig,
    CloudRunRouterConfig,
)
from pytest_release.canary.platforms.cloud_run.platform import CloudRunPlatform
from pytest_release.canary.platforms.cloud_run.router import CloudRunRouter
from pytest_release.canary.rollout import Rollout
from tests.cloud_run.emulator import CloudRunEmulator

PROJECT, REGION, SERVICE = "demo-project", "europe-west1", "shop"
IMAGE_ENV = {
    "v2-errors": {"FAULT_ERROR_RATE": "0.2"},
    "v2-sick": {"FAULT_FAIL_HEALTH": "1"},
}


def platform_config(endpoint: str, **overrides: object) -> CloudRunPlatformConfig:
    values: dict[str, object] = {
        "type": "cloud-run",
        "project": PROJECT,
        "region": REGION,
        "service": SERVICE,
        "api_endpoint": endpoint,
        "credentials": "anonymous",
        "operation_timeout": "60s",
    }
    values.update(overrides)
    return CloudRunPlatformConfig.model_validate(values)


@pytest.fixture
def emulator() -> Iterator[CloudRunEmulator]:
    emulator = CloudRunEmulator(IMAGE_ENV)
    emulator.start()
    try:
        emulator.create_service(PROJECT, REGION, SERVICE, "v1")
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def rollout(emulator: CloudRunEmulator) -> Iterator[Rollout]:
    platform = CloudRunPlatform(platform_config(emulator.endpoint))
    rollout = Rollout(platform, CloudRunRouter(platform, CloudRunRouterConfig(type="cloud-run")))
    try:
        yield rollout
    finally:
        platform.cleanup()

"""The platform contract (tests/support/platform_contract.py) on the local platform
(replicas are real processes of the fault service) behind a real HAProxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.rollout import Rollout
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from tests.canary.canary_support import platform_config
from tests.support.platform_contract import CASES, Case, Subject, case_ids


@pytest.fixture
def subject(tmp_path: Path) -> Iterator[Subject]:
    platform = LocalPlatform(platform_config(), tmp_path)
    router = HAProxyRouter(HAProxyConfig(), platform.state_dir)
    try:
        rollout = Rollout(platform, router, stable_image="v1", stable_replicas=1)
        yield Subject(rollout, stable_image="v1", release_image="v2", requests=20)
    finally:
        try:
            platform.cleanup()
        finally:
            router.stop()


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_local_platform_behind_haproxy_keeps_the_contract(case: Case, subject: Subject) -> None:
    case(subject)

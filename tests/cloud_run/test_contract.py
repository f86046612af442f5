"""The platform contract (tests/support/platform_contract.py) on Cloud Run, against the
Admin API emulator (tests/cloud_run/emulator.py, a fake named as such: the official
client library talks to it; its revisions are real processes serving HTTP)."""

from __future__ import annotations

import pytest

from pytest_release.canary.rollout import Rollout
from tests.support.platform_contract import CASES, Case, Subject, case_ids


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_cloud_run_and_its_traffic_split_keep_the_contract(case: Case, rollout: Rollout) -> None:
    case(Subject(rollout, stable_image="v1", release_image="v2", requests=20))

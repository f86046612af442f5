"""The cloud-run platform and router against the Admin API emulator, driven through the
real client library: revisions, traffic split read back and counted on real requests,
promotion, rollback to the previous revision, tags, etag conflicts, errors."""

from __future__ import annotations

import http.client
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_release.canary.platforms.cloud_run.platform import CloudRunPlatform
from pytest_release.canary.registry import router_problem
from pytest_release.canary.rollout import Rollout
from pytest_release.errors import PlatformError, RouterError
from tests.cloud_run.conftest import PROJECT, REGION, SERVICE, platform_config
from tests.cloud_run.emulator import CloudRunEmulator

NAME = f"projects/{PROJECT}/locations/{REGION}/services/{SERVICE}"


def _versions(url: str, requests: int) -> Counter[str]:
    """X-Version of ``requests`` GETs through ``url`` (real requests, one connection)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    seen: Counter[str] = Counter()
    try:
        for _ in range(requests):
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            seen[f"{response.getheader('X-Version')} {response.status}"] += 1
    finally:
        conn.close()
    return seen


def _tags(emulator: CloudRunEmulator) -> dict[str, str]:
    service = emulator.state(NAME).service
    return {t.tag: t.revision for t in service.traffic_statuses if t.tag}


def test_canary_revision_gets_no_traffic_then_steps_are_read_back_and_served(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    main = rollout.ensure_main()
    assert main.stable_image == "v1"
    status = rollout.deploy_canary("v2", 1)
    assert status.canary_image == "v2"
    assert [r.ready for r in status.replicas] == [True, True]
    weights = rollout.router.weights()
    assert (weights.stable, weights.canary) == (100, 0)
    # The new revision is served at its tag URL but gets none of the service's traffic.
    canary = status.group("canary")[0]
    assert _versions(f"http://{canary.endpoint}", 3) == {"v2 200": 3}
    assert _versions(rollout.router.url, 20) == {"v1 200": 20}
    for percent in (10, 50, 100):
        weights = rollout.shift(percent)
        assert (weights.stable, weights.canary) == (100 - percent, percent)
        served = emulator.state(NAME).service.traffic_statuses
        assert sorted(t.percent for t in served if t.percent) == sorted(
            p for p in (100 - percent, percent) if p
        )
        seen = _versions(rollout.router.url, 100)
        assert seen["v2 200"] == percent, seen
        assert seen["v1 200"] == 100 - percent, seen


def test_promote_then_rollback_returns_100_percent_to_the_previous_revision(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    old_main = rollout.ensure_main().group("stable")[0].name
    rollout.deploy_canary("v2", 1)
    rollout.shift(50)
    weights = rollout.promote("v2", 2)
    assert (weights.stable, weights.canary) == (100, 0)
    check = rollout.verify_main("v2", 2, 20)
    assert check.status.previous_image == "v1"
    assert check.failures == ()
    tags = _tags(emulator)
    assert set(tags) == {"stable", "previous"}  # no canary tag left
    assert tags["previous"] == old_main
    assert _versions(rollout.router.url, 20) == {"v2 200": 20}
    # min instances 2 needed a new revision; the 1-instance canary it replaced is gone.
    assert len(emulator.state(NAME).revisions) == 2

    status = rollout.rollback("v2")
    assert status.stable_image == "v1"
    assert status.previous_image is None
    assert _tags(emulator) == {"stable": old_main}
    check = rollout.verify_main("v1", None, 20)
    assert _versions(rollout.router.url, 20) == {"v1 200": 20}
    assert check.weights.stable_members == (old_main,)


def test_a_bad_canary_is_rolled_back_its_tag_and_revision_removed(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    rollout.ensure_main()
    canary = rollout.deploy_canary("v2-errors", 1).group("canary")[0].name
    rollout.shift(10)
    seen = _versions(rollout.router.url, 50)
    assert seen["v2-errors 500"] >= 1  # the canary really serves its share, badly
    weights = rollout.rollback_traffic()
    assert (weights.stable, weights.canary) == (100, 0)
    status = rollout.remove_canary()
    assert status.group("canary") == ()
    assert rollout.router.weights().canary_members == ()
    assert "canary" not in _tags(emulator)
    assert canary not in emulator.state(NAME).revisions  # deleted
    rollout.verify_main("v1", None, 20)


def test_a_second_canary_replaces_the_first_at_its_share(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    rollout.ensure_main()
    first = rollout.deploy_canary("v2", 1).group("canary")[0].name
    rollout.shift(10)
    assert rollout.deploy_canary("v2", 1).group("canary")[0].name == first  # kept
    second = rollout.deploy_canary("v2", 2).group("canary")
    assert len(second) == 2
    assert second[0].name != first
    weights = rollout.router.weights()
    assert (weights.stable, weights.canary) == (90, 10)
    assert first not in emulator.state(NAME).revisions


@pytest.mark.parametrize(
    "refusal", [("ABORTED", 409), ("FAILED_PRECONDITION", 412)], ids=["409-aborted", "412"]
)
def test_etag_conflicts_are_retried_then_named_after_the_last_attempt(
    emulator: CloudRunEmulator, rollout: Rollout, refusal: tuple[str, int]
) -> None:
    emulator.etag_conflict = refusal
    rollout.ensure_main()
    rollout.deploy_canary("v2", 1)
    before = emulator.updates
    emulator.conflicts = 2  # another writer changes the service before each of 2 updates
    weights = rollout.shift(10)
    assert (weights.stable, weights.canary) == (90, 10)
    assert emulator.updates - before == 3
    emulator.conflicts = 10
    platform = CloudRunPlatform(platform_config(emulator.endpoint, etag_attempts=3))
    with pytest.raises(PlatformError) as excinfo:
        platform.promote()
    message = str(excinfo.value)
    assert "changed under every one of 3 attempts (etag conflict" in message
    assert "has been modified since the etag" in message
    assert "platform.etag_attempts" in message
    assert rollout.router.weights().canary == 10  # nothing half-applied


def test_permission_denied_names_the_roles_needed(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    rollout.ensure_main()
    emulator.denied.add("run.services.update")
    with pytest.raises(PlatformError) as excinfo:
        rollout.deploy_canary("v2", 1)
    message = str(excinfo.value)
    assert "Permission 'run.services.update' denied" in message
    assert "roles/run.developer" in message
    assert "roles/iam.serviceAccountUser" in message
    assert f"app@{PROJECT}.iam.gserviceaccount.com" in message  # the runtime account
    emulator.denied = {"run.services.get"}
    with pytest.raises(PlatformError, match=r"roles/run\.developer"):
        rollout.router.weights()


def test_a_revision_that_does_not_start_fails_the_operation_with_its_message(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    rollout.ensure_main()
    emulator.broken_images.add("v2-broken")
    with pytest.raises(PlatformError) as excinfo:
        rollout.deploy_canary("v2-broken", 1)
    message = str(excinfo.value)
    assert "deploying revision" in message
    assert "is not ready and cannot serve traffic" in message
    assert "failed to start and listen on the port" in message
    status = rollout.platform.status()
    assert status.group("canary") == ()  # the failed revision is not the canary...
    assert len(emulator.state(NAME).revisions) == 1  # ...and was deleted
    assert _versions(rollout.router.url, 10) == {"v1 200": 10}
    emulator.fail_operations.append("Internal error while creating the revision.")
    with pytest.raises(PlatformError, match="Internal error while creating the revision"):
        rollout.deploy_canary("v2", 1)
    rollout.deploy_canary("v2", 1)
    emulator.fail_operations.append("Internal error while routing traffic.")
    with pytest.raises(
        PlatformError,
        match=r"splitting traffic stable 90% / canary 10%.*Internal error while routing traffic",
    ):
        rollout.shift(10)
    weights = rollout.router.weights()
    assert (weights.stable, weights.canary) == (100, 0)  # the served split did not change


def test_a_missing_service_and_a_split_main_say_what_to_do(emulator: CloudRunEmulator) -> None:
    platform = CloudRunPlatform(platform_config(emulator.endpoint, service="no-such"))
    with pytest.raises(PlatformError) as excinfo:
        platform.status()
    assert "does not exist" in str(excinfo.value)
    assert "gcloud run deploy no-such" in str(excinfo.value)


def test_a_service_split_between_untagged_revisions_has_no_main_to_adopt(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    from google.cloud import run_v2

    rollout.ensure_main()
    canary = rollout.deploy_canary("v2", 1).group("canary")[0].name
    main = rollout.platform.status().group("stable")[0].name
    api = rollout.platform.api
    service = api.get_service()  # someone splits by hand, without tags
    service.traffic = [
        run_v2.TrafficTarget(type_=2, revision=main, percent=50),
        run_v2.TrafficTarget(type_=2, revision=canary, percent=50),
    ]
    api.wait("splitting by hand", api.services.update_service(service=service))
    with pytest.raises(PlatformError) as excinfo:
        rollout.ensure_main()
    message = str(excinfo.value)
    assert f"serves its traffic from 2 revisions ({main} 50%, {canary} 50%)" in message
    assert "--to-revisions=REVISION=100" in message
    with pytest.raises(RouterError, match=r"integer percentage 0\.\.100, got -20"):
        rollout.shift(120)


def test_router_refuses_a_split_without_a_canary(rollout: Rollout) -> None:
    rollout.ensure_main()
    with pytest.raises(RouterError, match="no canary revision \\(tag 'canary'\\)"):
        rollout.shift(10)


def test_configuration_errors_name_the_value_and_the_fix() -> None:
    with pytest.raises(ValidationError, match="not a Google Cloud project ID"):
        platform_config("http://127.0.0.1:1", project="My Project")
    with pytest.raises(ValidationError, match="not a Cloud Run region"):
        platform_config("http://127.0.0.1:1", region="europe")
    with pytest.raises(ValidationError, match="must differ"):
        platform_config("http://127.0.0.1:1", canary_tag="stable")
    with pytest.raises(ValidationError, match="set api_endpoint"):
        platform_config(None)


def test_an_operation_that_does_not_finish_in_time_names_the_timeout(
    emulator: CloudRunEmulator, rollout: Rollout
) -> None:
    rollout.ensure_main()
    platform = CloudRunPlatform(platform_config(emulator.endpoint, operation_timeout="1s"))
    emulator.operations_run.clear()  # Cloud Run is still working on it
    try:
        with pytest.raises(PlatformError) as excinfo:
            platform.deploy_canary("v2", 1)
    finally:
        emulator.operations_run.set()
    message = str(excinfo.value)
    assert "deploying revision" in message
    assert "did not finish within 1s (platform.operation_timeout)" in message


def test_a_platform_with_another_router_type_is_told_which_fits() -> None:
    problem = router_problem("cloud-run", "haproxy")
    assert problem is not None
    assert "set router.type = 'cloud-run'" in problem
    assert router_problem("cloud-run", "cloud-run") is None


def test_missing_application_default_credentials_say_where_they_are_looked_for(
    emulator: CloudRunEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    config = platform_config(emulator.endpoint, credentials="application-default")
    with pytest.raises(PlatformError) as excinfo:
        CloudRunPlatform(config).status()
    message = str(excinfo.value)
    assert "no Google Cloud credentials found" in message
    assert "missing.json" in message
    assert "gcloud auth application-default login" in message

"""The one Rollout takes its steps by what the platform declares: a platform that
declares a step it does not implement is told so before anything changes.  The local
platform (real replica processes) behind a real HAProxy, with its capabilities
overridden the way a third-party platform might get them wrong."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_release.canary.platform import PlatformCapabilities
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.rollout import Rollout
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.errors import RolloutError
from tests.canary.canary_support import platform_config


class UpdatesInPlaceWithoutUpdateMain(LocalPlatform):
    capabilities = PlatformCapabilities(updates_main_in_place=True)


class RestoresWithoutRestoreMain(LocalPlatform):
    capabilities = PlatformCapabilities(restores_main=True)


Step = Callable[[Rollout], object]

CASES: dict[str, tuple[type[LocalPlatform], Step, str]] = {
    "promote": (
        UpdatesInPlaceWithoutUpdateMain,
        lambda rollout: rollout.promote("v2", 1),
        r"declares capabilities\.updates_main_in_place but has no update_main\(image, "
        r"replicas, record_previous=\.\.\.\): implement it \(pytest_release\.canary\.platform"
        r"\.UpdatesMainInPlace\) or leave the capability False",
    ),
    "restore_main": (
        RestoresWithoutRestoreMain,
        lambda rollout: rollout.restore_main("v0"),
        r"declares capabilities\.restores_main but has no restore_main\(image\): implement "
        r"it \(pytest_release\.canary\.platform\.RestoresMain\) or leave the capability False",
    ),
}


@pytest.fixture
def rollout_of(tmp_path: Path) -> Iterator[Callable[[type[LocalPlatform]], Rollout]]:
    started: list[Rollout] = []

    def build(kind: type[LocalPlatform]) -> Rollout:
        platform = kind(platform_config(), tmp_path)
        router = HAProxyRouter(HAProxyConfig(), platform.state_dir)
        started.append(Rollout(platform, router, stable_image="v1", stable_replicas=1))
        return started[-1]

    yield build
    for rollout in started:
        try:
            rollout.platform.cleanup()
        finally:
            assert isinstance(rollout.router, HAProxyRouter)
            rollout.router.stop()


@pytest.mark.parametrize("step", list(CASES))
def test_a_declared_step_the_platform_lacks_is_named_before_anything_changes(
    step: str, rollout_of: Callable[[type[LocalPlatform]], Rollout]
) -> None:
    kind, take, message = CASES[step]
    rollout = rollout_of(kind)
    rollout.deploy_canary("v2", 1)
    rollout.shift(10)
    before = rollout.platform.status()
    with pytest.raises(RolloutError, match=message):
        take(rollout)
    # Nothing moved: the canary keeps its share and its replica, main its version.
    weights = rollout.router.weights()
    assert (weights.stable, weights.canary) == (90, 10), weights
    after = rollout.platform.status()
    assert after.stable_image == before.stable_image == "v1"
    assert after.canary_image == "v2"
    assert [r.name for r in after.group("canary")] == [r.name for r in before.group("canary")]

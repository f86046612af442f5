"""The platform/router contract: the same cases against every platform and router pair.

A test folder that can run a pair here (local + HAProxy for real, Kubernetes + Traefik or
Gateway against the kwok test bed, Cloud Run against its emulator, the example plug-in
of ``examples/platform-plugin``) builds a :class:`Subject` per case and runs each of
:data:`CASES` on it::

    @pytest.mark.parametrize("case", CASES, ids=case_ids())
    def test_contract(case: Case, subject: Subject) -> None:
        case(subject)

Each case starts on a fresh platform (the main deployment not yet started) and drives
the one :class:`~pytest_release.canary.rollout.Rollout` over the platform and router
under test (their protocols only); the end state is asserted by the one implementation
every platform shares (:mod:`pytest_release.canary.end_state`), one case checks that it
catches a canary left behind, and one that the router behaves as its capabilities say.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from pytest_release.canary.end_state import verify_main
from pytest_release.canary.rollout import NO_BASELINE, Rollout
from pytest_release.errors import RolloutError


@dataclass(frozen=True)
class Subject:
    """One platform/router pair ready for a case."""

    rollout: Rollout
    stable_image: str  # what ensure_main starts (or finds) as the main deployment
    release_image: str  # what the case deploys as the canary
    requests: int  # requests through the router per check; 0 where they reach nothing


Case = Callable[[Subject], None]


def _get(url: str, requests: int) -> list[int]:
    """Status codes of ``requests`` GETs of ``/`` through ``url``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    codes = []
    try:
        for _ in range(requests):
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            codes.append(response.status)
    finally:
        conn.close()
    return codes


def deploy_and_read_back(subject: Subject) -> None:
    """The main deployment starts and takes 100 %; a canary joins at 0 %, ready, and the
    router names exactly its members."""
    rollout = subject.rollout
    status = rollout.ensure_main()
    assert status.stable_image == subject.stable_image
    assert status.group("stable"), status.describe()
    assert not status.not_ready("stable"), status.describe()
    status = rollout.deploy_canary(subject.release_image, 1)
    assert status.canary_image == subject.release_image
    assert len(status.group("canary")) == 1, status.describe()
    assert not status.not_ready("canary"), status.describe()
    weights = rollout.router.weights()
    assert (weights.stable, weights.canary) == (100, 0), weights
    assert set(weights.stable_members) == set(rollout.router.members_for(status, "stable"))


def weights_read_back(subject: Subject) -> None:
    """Every split asked for is the split read back, from the call and from the router."""
    rollout = subject.rollout
    rollout.deploy_canary(subject.release_image, 1)
    step = rollout.router.capabilities.weight_step
    for percent in (10, 50, 100, 0):
        percent -= percent % step
        weights = rollout.shift(percent)
        assert (weights.stable, weights.canary) == (100 - percent, percent), weights
        again = rollout.router.weights()
        assert (again.stable, again.canary) == (100 - percent, percent), again


def counters_when_declared(subject: Subject) -> None:
    """A router that declares counters counts every request through it, by version."""
    rollout = subject.rollout
    if not rollout.router.capabilities.counters:
        assert rollout.router.counters() is None
        pytest.skip(f"{rollout.router.describe} declares no per-version counters")
    rollout.deploy_canary(subject.release_image, 1)
    url = rollout.targets().router_url
    assert url, "a router with counters must be reachable to count requests"
    rollout.shift(50)
    before = rollout.router.counters()
    assert before is not None
    codes = _get(url, 40)
    after = rollout.router.counters()
    assert after is not None
    counted = {g: after[g].requests - before[g].requests for g in ("stable", "canary")}
    assert sum(counted.values()) == len(codes) == 40, counted
    assert counted["stable"] > 0, counted
    assert counted["canary"] > 0, counted
    assert after["canary"].errors - before["canary"].errors == 0


def promote_end_state(subject: Subject) -> None:
    """After a promotion: main on the release, 100 %, canary gone, requests served; the
    version before is remembered."""
    rollout = subject.rollout
    rollout.deploy_canary(subject.release_image, 1)
    rollout.shift(50)
    weights = rollout.promote(subject.release_image, 2)
    assert (weights.stable, weights.canary) == (100, 0), weights
    check = verify_main(rollout, subject.release_image, 2, subject.requests, NO_BASELINE)
    assert check.requests == subject.requests
    assert not check.failures
    assert check.status.previous_image == subject.stable_image


def rollback_end_state(subject: Subject) -> None:
    """A rollback after a promotion returns main to the version before, canary gone."""
    rollout = subject.rollout
    rollout.deploy_canary(subject.release_image, 1)
    rollout.promote(subject.release_image, 1)
    status = rollout.rollback(subject.release_image)
    assert status.stable_image == subject.stable_image
    check = verify_main(rollout, subject.stable_image, None, subject.requests, NO_BASELINE)
    assert not check.status.group("canary")
    assert check.requests == subject.requests
    assert not check.failures


def end_state_catches_a_canary_left(subject: Subject) -> None:
    """The end-state check fails, naming the canary and the split, while a canary still
    takes traffic; after the canary's rollback it passes."""
    rollout = subject.rollout
    rollout.deploy_canary(subject.release_image, 1)
    rollout.shift(10)
    with pytest.raises(RolloutError, match=r"(?s)the canary remains.*stable 90% / canary 10%"):
        verify_main(rollout, subject.stable_image, None, subject.requests, NO_BASELINE)
    rollout.rollback(None)
    verify_main(rollout, subject.stable_image, None, subject.requests, NO_BASELINE)


def canary_leaves_as_the_router_declares(subject: Subject) -> None:
    """All traffic back to main keeps the canary's members at 0 % where the router
    declares idle members (``RouterCapabilities.idle_members``), else takes them out (a
    member must serve while named, and the canary is about to stop); the canary's removal
    leaves none either way, and main serves."""
    rollout = subject.rollout
    rollout.deploy_canary(subject.release_image, 1)
    rollout.shift(10)
    weights = rollout.rollback_traffic()
    assert (weights.stable, weights.canary) == (100, 0), weights
    named = rollout.router.members_for(rollout.platform.status(), "canary")
    assert named, "the canary still runs: the router names members for it"
    expected = set(named) if rollout.router.capabilities.idle_members else set()
    for read in (weights, rollout.router.weights()):
        assert set(read.canary_members) == expected, read
    status = rollout.remove_canary()
    assert not status.group("canary"), status.describe()
    assert rollout.router.weights().canary_members == ()
    verify_main(rollout, subject.stable_image, None, subject.requests, NO_BASELINE)


CASES: tuple[Case, ...] = (
    deploy_and_read_back,
    weights_read_back,
    counters_when_declared,
    promote_end_state,
    rollback_end_state,
    end_state_catches_a_canary_left,
    canary_leaves_as_the_router_declares,
)


def case_ids() -> list[str]:
    return [case.__name__ for case in CASES]

"""The HAProxy router: a real haproxy, real backends, weights changed over the runtime API."""

from __future__ import annotations

import collections
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_release.canary.router import TrafficRouter
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter, server_weights
from pytest_release.errors import RouterError
from pytest_release.system.processes import ProcessRef, free_port
from tests.canary.canary_support import FAULT_SERVICE, load_through


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, list[str]]]:
    """Two stable (v1) and two canary (v2) fault services, ended by PID afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    groups: dict[str, list[str]] = {"stable": [], "canary": []}
    try:
        for group, version in (
            ("stable", "v1"),
            ("stable", "v1"),
            ("canary", "v2"),
            ("canary", "v2"),
        ):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(FAULT_SERVICE), "--port", str(port), "--version", version],
                    stderr=subprocess.DEVNULL,
                )
            )
            groups[group].append(f"127.0.0.1:{port}")
        from pytest_release.canary.platforms.local.runtimes import probe_health

        for endpoint in groups["stable"] + groups["canary"]:
            for _ in range(200):
                if probe_health(endpoint, "/health", 0.2)[0]:
                    break
                time.sleep(0.02)
        yield groups
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[HAProxyRouter]:
    r = HAProxyRouter(HAProxyConfig(slots=6), tmp_path)
    try:
        yield r
    finally:
        r.stop()


def _versions(router: HAProxyRouter, n: int) -> collections.Counter[str]:
    host, _, port = router.url.removeprefix("http://").rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    seen: collections.Counter[str] = collections.Counter()
    try:
        for _ in range(n):
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            seen[response.getheader("X-Version") or "?"] += 1
    finally:
        conn.close()
    return seen


def test_weights_are_applied_live_read_back_and_exact_per_request(
    router: HAProxyRouter, backends: dict[str, list[str]]
) -> None:
    assert isinstance(router, TrafficRouter)
    router.start()
    pid = router._load().haproxy
    weights = router.set_members(stable=backends["stable"], canary=backends["canary"])
    assert (weights.stable, weights.canary) == (100, 0)
    assert _versions(router, 40) == {"v1": 40}

    weights = router.set_weights(stable=90, canary=10)
    assert (weights.stable, weights.canary) == (90, 10)
    assert router.weights() == weights
    # HAProxy's weighted round robin is exact per cycle of the weights: any window of
    # requests is within one request of the split (the window starts mid-cycle).
    seen = _versions(router, 200)
    assert set(seen) == {"v1", "v2"}
    assert abs(seen["v2"] - 20) <= 1

    router.set_weights(stable=50, canary=50)
    seen = _versions(router, 100)
    assert abs(seen["v2"] - 50) <= 1
    router.set_weights(stable=0, canary=100)
    assert _versions(router, 20) == {"v2": 20}
    # No reload, no restart: the same HAProxy process did all of it.
    assert router._load().haproxy == pid
    servers = {s.endpoint: s for s in router.servers()}
    assert {servers[e].weight for e in backends["stable"]} == {0}


def test_changing_weights_and_members_under_load_fails_no_request(
    router: HAProxyRouter, backends: dict[str, list[str]]
) -> None:
    router.start()
    router.set_members(stable=backends["stable"][:1], canary=[])
    port = int(router.url.rpartition(":")[2])
    with load_through(port) as load:
        router.set_members(stable=backends["stable"], canary=backends["canary"][:1])
        for canary in (10, 25, 50, 100, 0):
            router.set_weights(stable=100 - canary, canary=canary)
        router.set_members(stable=backends["stable"], canary=backends["canary"])
        router.set_weights(stable=50, canary=50)
        router.set_members(stable=backends["stable"][1:], canary=backends["canary"], split=(50, 50))
        router.set_weights(stable=100, canary=0)
        router.set_members(stable=backends["stable"][1:], canary=[])
    assert load.failures == []
    assert load.ok > 0
    final = router.weights()
    assert final.stable_members == tuple(backends["stable"][1:])
    assert final.canary_members == ()


def test_state_outlives_the_router_object_and_stop_ends_haproxy(
    tmp_path: Path, backends: dict[str, list[str]]
) -> None:
    first = HAProxyRouter(HAProxyConfig(), tmp_path)
    try:
        first.set_members(stable=backends["stable"], canary=backends["canary"])
        first.set_weights(stable=75, canary=25)
        # Another process (the next stage) re-attaches through the state file.
        code = (
            "import sys; from pathlib import Path;"
            "from pytest_release.canary.routers.haproxy.config import HAProxyConfig;"
            "from pytest_release.canary.routers.haproxy.router import HAProxyRouter;"
            "w = HAProxyRouter(HAProxyConfig(), Path(sys.argv[1])).weights();"
            "print(w.stable, w.canary)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["75", "25"]
        ref = first._load().haproxy
        assert ref is not None
        assert ref.alive()
    finally:
        first.stop()
    assert not ref.alive()
    assert not (tmp_path / "haproxy" / "router.json").exists()


def test_a_dead_haproxy_is_started_again_with_its_members_and_split(
    router: HAProxyRouter, backends: dict[str, list[str]]
) -> None:
    router.set_members(stable=backends["stable"], canary=backends["canary"][:1])
    router.set_weights(stable=75, canary=25)
    old = router._load().haproxy
    assert old is not None
    os.kill(old.pid, signal.SIGKILL)
    _wait_dead(old)
    weights = router.weights()  # re-attach: HAProxy starts again from the saved state
    assert (weights.stable, weights.canary) == (75, 25)
    assert router._load().haproxy != old
    seen = _versions(router, 40)
    assert abs(seen["v2"] - 10) <= 1


def _wait_dead(ref: ProcessRef) -> None:
    for _ in range(500):
        if not ref.alive():
            return
        time.sleep(0.01)
    raise AssertionError(f"{ref} still runs")


def test_weights_are_read_from_haproxy_and_a_split_it_does_not_apply_is_an_error(
    router: HAProxyRouter, backends: dict[str, list[str]]
) -> None:
    router.set_members(stable=backends["stable"], canary=backends["canary"])
    router.set_weights(stable=90, canary=10)
    state = router._load()
    slots = router.server_endpoints()
    canary_slot = next(name for name, e in slots.items() if e == backends["canary"][0])
    stable_slot = next(name for name, e in slots.items() if e == backends["stable"][0])
    # Someone changes HAProxy behind the router's back: the read-back shows it...
    router._command(state, f"set server app/{stable_slot} weight 0")
    assert (router.weights().stable, router.weights().canary) == (82, 18)
    # ...and a split HAProxy cannot apply (a canary server in maintenance) is an error.
    router._command(state, f"set server app/{canary_slot} state maint")
    with pytest.raises(RouterError) as excinfo:
        router.set_weights(stable=90, canary=10)
    assert "HAProxy applies stable 95% / canary 5% after setting stable 90% / canary 10%" in str(
        excinfo.value
    )


def test_bad_requests_are_clear_errors(
    router: HAProxyRouter, backends: dict[str, list[str]], tmp_path: Path
) -> None:
    with pytest.raises(RouterError, match="must add up to 100, got stable=90 \\+ canary=20"):
        router.set_weights(stable=90, canary=20)
    with pytest.raises(
        RouterError, match=r"stable weight must be an integer percentage 0\.\.100, got -1"
    ):
        router.set_weights(stable=-1, canary=101)
    router.set_members(stable=backends["stable"], canary=[])
    with pytest.raises(RouterError, match="canary group: it has no endpoint"):
        router.set_weights(stable=90, canary=10)
    with pytest.raises(RouterError, match="cannot be both stable and canary"):
        router.set_members(stable=backends["stable"], canary=backends["stable"][:1])
    small = HAProxyRouter(HAProxyConfig(slots=2), tmp_path / "small")
    try:
        with pytest.raises(RouterError, match=r"2 server slots.*raise router\.slots"):
            small.set_members(stable=backends["stable"], canary=backends["canary"])
    finally:
        small.stop()


def test_missing_haproxy_binary_names_the_fix(tmp_path: Path) -> None:
    router = HAProxyRouter(HAProxyConfig(binary="no-such-haproxy"), tmp_path)
    with pytest.raises(RouterError, match="apt-get install -y haproxy"):
        router.start()


def test_occupied_frontend_port_is_reported(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        router = HAProxyRouter(HAProxyConfig(port=port), tmp_path)
        with pytest.raises(RouterError, match=f"127.0.0.1:{port} is already in use"):
            router.start()


@pytest.mark.parametrize(
    ("split", "counts", "expected"),
    [
        ((90, 10), (1, 1), (9, 1)),
        ((90, 10), (2, 1), (9, 2)),
        ((50, 50), (1, 2), (2, 1)),
        ((50, 50), (3, 2), (2, 3)),
        ((0, 100), (2, 2), (0, 1)),
        ((100, 0), (2, 2), (1, 0)),
    ],
)
def test_server_weights_give_each_group_its_share(
    split: tuple[int, int], counts: tuple[int, int], expected: tuple[int, int]
) -> None:
    ws, wc = server_weights(split[0], split[1], counts[0], counts[1])
    assert (ws, wc) == expected
    total = ws * counts[0] + wc * counts[1]
    assert ws * counts[0] * 100 == split[0] * total


def test_process_refs_survive_pid_checks() -> None:
    me = ProcessRef.of(os.getpid())
    assert me.alive()
    assert not ProcessRef(me.pid, (me.start_time or 0) + 1).alive()

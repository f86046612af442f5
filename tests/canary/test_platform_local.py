"""The local platform: real replica processes under the supervisor, and real containers."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pytest_release.canary.platform import Platform, PlatformStatus
from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.errors import PlatformError
from pytest_release.system.processes import ProcessRef, read_json
from tests.canary.canary_support import FAULT_SERVICE, platform_config


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    p = LocalPlatform(platform_config(), tmp_path)
    try:
        yield p
    finally:
        p.cleanup()


def _get(endpoint: str, path: str = "/") -> tuple[int, dict[str, str]]:
    host, _, port = endpoint.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


def _replica_pids(platform: LocalPlatform) -> dict[str, ProcessRef]:
    status = read_json(platform.state_dir / "supervisor" / "status.json") or {}
    return {
        name: ProcessRef(int(info["pid"]), info["start_time"])
        for name, info in status.get("replicas", {}).items()
        if info.get("pid")
    }


def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_replica_counts_are_real_processes_on_their_own_ports(platform: LocalPlatform) -> None:
    assert isinstance(platform, Platform)
    status = platform.deploy_stable("v1", 2)
    status = platform.deploy_canary("v2", 3)
    assert len(status.group("stable")) == 2
    assert len(status.group("canary")) == 3
    assert all(r.running and r.ready and r.restarts == 0 for r in status.replicas)
    endpoints = [r.endpoint for r in status.replicas]
    assert len(set(endpoints)) == 5
    pids = _replica_pids(platform)
    assert len({ref.pid for ref in pids.values()}) == 5
    assert all(ref.alive() for ref in pids.values())
    for replica in status.replicas:
        code, headers = _get(replica.endpoint)
        assert code == 200
        assert headers["X-Version"] == replica.image
        assert headers["X-Replica"] == replica.endpoint

    # Scaling the canary down stops exactly the replicas that go.
    status = platform.deploy_canary("v2", 1)
    assert len(status.group("canary")) == 1
    gone = [ref for name, ref in pids.items() if name not in {r.name for r in status.replicas}]
    assert len(gone) == 2
    assert not any(ref.alive() for ref in gone)


def test_a_dead_replica_is_restarted_and_counted(platform: LocalPlatform) -> None:
    platform.deploy_stable("v1", 1)
    status = platform.deploy_canary("v2", 1)
    canary = status.group("canary")[0]
    old = _replica_pids(platform)[canary.name]
    os.kill(old.pid, signal.SIGKILL)
    _wait(lambda: platform.status().group("canary")[0].restarts == 1)
    _wait(lambda: platform.status().group("canary")[0].ready)
    new = _replica_pids(platform)[canary.name]
    assert new.pid != old.pid
    after = platform.status()
    assert after.group("canary")[0].endpoint == canary.endpoint
    assert after.group("stable")[0].restarts == 0


def test_a_crashing_version_keeps_restarting(platform: LocalPlatform) -> None:
    platform.deploy_stable("v1", 1)
    status = platform.deploy_canary("v2-crash", 1)  # FAULT_CRASH_AFTER=25
    endpoint = status.group("canary")[0].endpoint
    for _ in range(26):
        try:
            _get(endpoint)
        except (OSError, http.client.HTTPException):
            break
    _wait(lambda: platform.status().group("canary")[0].restarts >= 1)
    log = (platform.state_dir / "supervisor" / "logs" / "r2.log").read_text()
    assert "crashing after 25 requests" in log


def test_replicas_outlive_the_session_and_the_next_one_reattaches(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path;"
        "from tests.canary.canary_support import platform_config;"
        "from pytest_release.canary.platforms.local.platform import LocalPlatform;"
        "p = LocalPlatform(platform_config(), Path(sys.argv[1]));"
        "p.deploy_stable('v1', 1); p.deploy_canary('v2', 2)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=root, timeout=60)
    platform = LocalPlatform(platform_config(), tmp_path)
    try:
        status = platform.status()
        assert [r.version for r in status.replicas] == ["stable", "canary", "canary"]
        assert all(r.running and r.ready for r in status.replicas)
        state = read_json(tmp_path / ".pytest-release" / "canary" / "platform.json")
        assert state is not None
        supervisor = ProcessRef.from_json(state["supervisor"])
        assert supervisor.alive()
        # The next stage promotes what the previous one deployed.
        status = platform.promote()
        assert status.stable_image == "v2"
        assert status.previous_image == "v1"
        assert len(status.group("stable")) == 2
        assert status.group("canary") == ()
        replicas = _replica_pids(platform)
    finally:
        platform.cleanup()
    assert not supervisor.alive()
    assert not any(ref.alive() for ref in replicas.values())
    assert not (tmp_path / ".pytest-release" / "canary" / "platform.json").exists()


def test_teardown_command_ends_platform_and_router(tmp_path: Path) -> None:
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.canary.routers.haproxy.router import HAProxyRouter

    platform = LocalPlatform(platform_config(), tmp_path)
    router = HAProxyRouter(HAProxyConfig(), platform.state_dir)
    try:
        status = platform.deploy_stable("v1", 2)
        router.set_members(stable=status.endpoints("stable"), canary=[])
        refs = list(_replica_pids(platform).values())
        state = read_json(platform.state_path)
        assert state is not None
        refs.append(ProcessRef.from_json(state["supervisor"]))
        haproxy = router._load().haproxy
        assert haproxy is not None
        refs.append(haproxy)
        assert all(ref.alive() for ref in refs)
        out = subprocess.run(
            [sys.executable, "-m", "pytest_release.canary.teardown", str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert "platform local-process: ended 2 replica(s) and their supervisor" in out
        assert "router: ended HAProxy" in out
        _wait(lambda: not any(ref.alive() for ref in refs))
        assert not platform.state_path.exists()
    finally:
        platform.cleanup()
        router.stop()


def test_a_killed_supervisor_is_replaced_and_its_orphans_ended(platform: LocalPlatform) -> None:
    platform.deploy_stable("v1", 1)
    state = read_json(platform.state_path)
    assert state is not None
    supervisor = ProcessRef.from_json(state["supervisor"])
    orphan = next(iter(_replica_pids(platform).values()))
    os.kill(supervisor.pid, signal.SIGKILL)
    _wait(lambda: not supervisor.alive())
    assert orphan.alive()  # the replica is still serving
    status = platform.deploy_canary("v2", 1)  # re-attaching starts a new supervisor
    assert not orphan.alive()
    assert all(r.running and r.ready for r in status.replicas)


def test_a_canary_that_never_gets_ready_is_reported_with_its_output(tmp_path: Path) -> None:
    platform = LocalPlatform(platform_config(ready_timeout=2.0), tmp_path)
    try:
        platform.deploy_stable("v1", 1)
        with pytest.raises(PlatformError) as excinfo:
            platform.deploy_canary("v2-sick", 1)  # FAULT_FAIL_HEALTH=1
        message = str(excinfo.value)
        assert "1 canary replica(s) not ready after 2s" in message
        assert "GET /health -> 503" in message
        assert "fault_service v2-sick listening" in message
        # Rolling back removes the sick replica.
        status = platform.rollback()
        assert status.group("canary") == ()
    finally:
        platform.cleanup()


def test_a_command_that_cannot_start_names_the_program(tmp_path: Path) -> None:
    config = platform_config(command=["/no/such/program", "{port}"], ready_timeout=1.0)
    platform = LocalPlatform(config, tmp_path)
    try:
        with pytest.raises(PlatformError, match="cannot start '/no/such/program'"):
            platform.deploy_stable("v1", 1)
    finally:
        platform.cleanup()


def test_configuration_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"needs platform\.command"):
        LocalPlatformConfig(type="local-process")
    with pytest.raises(ValidationError, match="must start with '/'"):
        platform_config(health_path="health")
    platform = LocalPlatform(platform_config(command=["x", "{prot}"]), tmp_path)
    try:
        with pytest.raises(PlatformError, match=r"placeholders are \{port\}, \{image\}"):
            platform.deploy_stable("v1", 1)
        with pytest.raises(PlatformError, match="no canary to promote"):
            platform.promote()
    finally:
        platform.cleanup()


def test_a_canary_of_another_image_must_be_rolled_back_first(platform: LocalPlatform) -> None:
    platform.deploy_stable("v1", 1)
    platform.deploy_canary("v2", 1)
    with pytest.raises(PlatformError, match="a canary of 'v2' is deployed, not 'v3'"):
        platform.deploy_canary("v3", 1)


# -- Docker ---------------------------------------------------------------------------------
DOCKERFILE = """\
FROM {base}
COPY fault_service.py /app/fault_service.py
CMD ["python3", "/app/fault_service.py"]
"""


@pytest.fixture(scope="module")
def fault_image(
    base_image: str, docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> str:
    context = tmp_path_factory.mktemp("fault-image")
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=base_image))
    (context / "fault_service.py").write_bytes(FAULT_SERVICE.read_bytes())
    tag = "pytest-release-test/fault-service:canary"
    docker_client.images.build(path=str(context), tag=tag, rm=True, network_mode="host")
    return tag


def _container_status(platform: LocalPlatform) -> PlatformStatus:
    return platform.status()


def test_docker_replicas_are_containers_with_real_restart_counts(
    fault_image: str, docker_client: Any, tmp_path: Path
) -> None:
    crashy = "pytest-release-test/fault-service:crashy"
    config = LocalPlatformConfig(
        type="local-docker",
        env={"VERSION": "{image}"},
        image_env={crashy: {"FAULT_CRASH_AFTER": "3"}},
        ready_timeout=60.0,
        stop_timeout=5.0,
    )
    platform = LocalPlatform(config, tmp_path)
    docker_client.images.get(fault_image).tag(crashy)
    try:
        platform.deploy_stable(fault_image, 1)
        status = platform.deploy_canary(crashy, 1)
        state = read_json(platform.state_path)
        assert state is not None
        ids = [r["container_id"] for r in state["stable"] + state["canary"]]
        containers = [docker_client.containers.get(i) for i in ids]
        for container in containers:
            attrs = container.attrs
            assert attrs["HostConfig"]["NetworkMode"] == "host"
            assert attrs["HostConfig"]["Init"] is True
            assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
        canary = status.group("canary")[0]
        assert _get(canary.endpoint)[1]["X-Version"] == crashy
        for _ in range(5):
            try:
                _get(canary.endpoint)
            except (OSError, http.client.HTTPException):
                break
        _wait(lambda: _container_status(platform).group("canary")[0].restarts >= 1, 60)
        assert platform.status().group("stable")[0].restarts == 0
        platform.rollback()
        import docker.errors

        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(ids[1])
    finally:
        platform.cleanup()
        docker_client.images.remove(crashy, noprune=True)
    import docker.errors

    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(ids[0])

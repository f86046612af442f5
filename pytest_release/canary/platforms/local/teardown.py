"""The local platform's part of ``python -m pytest_release.canary.teardown``: its replicas
and supervisor (``platform.json``) and the HAProxy in front of them (``haproxy/``), ended
by PID / container id from their state files (its registration's ``teardown``)."""

from __future__ import annotations

from pathlib import Path

from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.system.processes import read_json


def end_kept(rootdir: Path, directory: Path) -> list[str]:
    """End what the local platform and its router keep under ``directory``; what ended."""
    done: list[str] = []
    state = read_json(directory / "platform.json")
    if state is not None:
        config = LocalPlatformConfig(
            type=state["type"], command=("unused",), state_dir=str(directory)
        )
        platform = LocalPlatform(config, rootdir)
        replicas = len(state.get("stable", [])) + len(state.get("canary", []))
        platform.cleanup()
        done.append(f"platform {state['type']}: ended {replicas} replica(s) and their supervisor")
    if (directory / "haproxy" / "router.json").exists():
        HAProxyRouter(HAProxyConfig(), directory).stop()
        done.append("router: ended HAProxy")
    return done

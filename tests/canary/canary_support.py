"""Helpers for the canary engine's tests: a project running the fault service, a load
loop counting failed requests through the router, a Slack receiver, teardown by PID."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.canary.config import SamplerConfig
from pytest_release.canary.judge import JudgeConfig
from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.settings import CanarySettings
from pytest_release.system.processes import free_port
from tests.support.http_server import QuietHandler, serving
from tests.support.spine import stage_cases
from tests.support.stages import canary_stages

if TYPE_CHECKING:
    from pytest_release.canary.settings import PlatformConfig

FAULT_SERVICE = Path(__file__).resolve().parents[1] / "services" / "fault_service.py"
STATE_DIR = ".pytest-release/canary"

# Versions ("images" of the local-process platform) and their fault knobs.
IMAGE_ENV = {
    "v2-errors": {"FAULT_ERROR_RATE": "0.05"},
    # 20 %: a canary that fails in every hold (for tests of what follows a failure)
    "v2-errors-20": {"FAULT_ERROR_RATE": "0.2"},
    "v2-slow": {"FAULT_LATENCY_MS": "800"},
    "v2-crash": {"FAULT_CRASH_AFTER": "25"},
    "v2-sick": {"FAULT_FAIL_HEALTH": "1"},
    "v2-sickens": {"FAULT_FAIL_HEALTH_AFTER": "3"},
}


def platform_config(**overrides: object) -> LocalPlatformConfig:
    values: dict[str, object] = {
        "type": "local-process",
        "command": [
            "python3",
            str(FAULT_SERVICE),
            "--port",
            "{port}",
            "--version",
            "{image}",
        ],
        "image_env": IMAGE_ENV,
        "stable_image": "v1",
        "stable_replicas": 1,
        "ready_timeout": 15.0,
        "state_dir": STATE_DIR,
    }
    values.update(overrides)
    return LocalPlatformConfig.model_validate(values)


SAMPLER = {
    "rate": 10,
    "direct_rate": 40,
    "concurrency": 48,
    "health_interval": "0.5s",
    "status_interval": "0.5s",
}
# The machine is shared and loaded: a good canary's p95 can reach several hundred ms, so
# tests that are not about latency use a lenient latency threshold.
# The evidence bar is low enough for a loaded CI machine (the sampler then falls behind
# its rate), high enough that a 5 % error rate shows within the hold.
JUDGE = {
    "min_requests": 10,
    "max_p95_latency_ms": 2000,
    "comparison": {"alpha": 0.001, "min_samples": 10},
}


def haproxy_settings(platform: PlatformConfig) -> CanarySettings:
    """The canary gate's settings for ``platform`` behind HAProxy, the sampler and the
    judge at their defaults, no Slack, a rollback on insufficient evidence."""
    return CanarySettings(
        gate="canary",
        platform=platform,
        router=HAProxyConfig(),
        sampler=SamplerConfig(),
        judge=JudgeConfig(),
        slack=None,
        rollback_on_insufficient=True,
        verify_requests=10,
    )


def canary_toml(
    *,
    router_port: int,
    hold: str = "2s",
    interval: str = "1s",
    sampler: dict[str, object] | None = None,
    judge: dict[str, object] | None = None,
    slack: bool = False,
    gate: dict[str, object] | None = None,
    extra: str = "",
) -> str:
    """``[tool.pytest-release]`` for a canary pipeline on the local-process platform."""
    env = "\n".join(f'"{image}" = {_inline(knobs)}' for image, knobs in IMAGE_ENV.items())
    command = json.dumps(platform_config().command)
    rollout = f'action = "canary", hold = "{hold}", interval = "{interval}"'
    toml = f"""
{canary_stages(rollout)}

[gates.canary]
paths = []
verify_requests = 10
{_table(gate or {})}
[gates.canary.platform]
type = "local-process"
command = {command}
stable_image = "v1"
stable_replicas = 1
ready_timeout = "15s"
[gates.canary.platform.image_env]
{env}
[gates.canary.router]
port = {router_port}
[gates.canary.sampler]
{_table({**SAMPLER, **(sampler or {})})}
[gates.canary.judge]
{_table({**JUDGE, **(judge or {})})}
"""
    if slack:
        toml += """
[gates.canary.slack]
webhook_env = "SLACK_WEBHOOK_URL"
timeout = 5
"""
    return toml + textwrap.dedent(extra)


def _value(value: object) -> str:
    if isinstance(value, dict):
        return _inline(value)
    return json.dumps(value)


def _table(values: dict[str, object]) -> str:
    return "\n".join(f"{k} = {_value(v)}" for k, v in values.items())


def _inline(table: dict[str, str] | dict[str, object]) -> str:
    return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in table.items()) + " }"


def teardown_platform(root: Path) -> None:
    """End every process the stages started under ``root`` (by PID, from the state)."""
    platform = LocalPlatform(platform_config(), root)
    router = HAProxyRouter(HAProxyConfig(), platform.state_dir)
    try:
        platform.cleanup()
    finally:
        router.stop()


@pytest.fixture
def canary_root(pytester: pytest.Pytester) -> Iterator[Path]:
    """The pytester project dir; everything started there is ended afterwards."""
    try:
        yield pytester.path
    finally:
        teardown_platform(pytester.path)


def bootstrap_main(root: Path, router_port: int) -> None:
    """Production before the release: main deployment v1 behind the router."""
    from pytest_release.canary.rollout import Rollout

    config = platform_config()
    platform = LocalPlatform(config, root)
    router = HAProxyRouter(HAProxyConfig(port=router_port), platform.state_dir)
    Rollout(platform, router, stable_image="v1", stable_replicas=1).ensure_main()


@dataclass
class LoadLoop:
    """Requests through the router in a background thread; every failure is kept."""

    port: int
    interval: float = 0.01
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    version = response.getheader("X-Version") or "the router"
                    self.failures.append(f"HTTP {response.status} from {version}")
                else:
                    self.ok += 1
                    version = response.getheader("X-Version") or "?"
                    self.versions[version] = self.versions.get(version, 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            time.sleep(self.interval)
        conn.close()

    def failures_except(self, injected: str) -> list[str]:
        """Failures other than the canary's own injected errors (``HTTP 500 from v2-x``):
        the ones the router or a rollout step caused."""
        return [f for f in self.failures if f != injected]

    def start(self) -> LoadLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)


@contextmanager
def load_through(port: int) -> Iterator[LoadLoop]:
    loop = LoadLoop(port).start()
    try:
        yield loop
    finally:
        loop.stop()


@dataclass
class SlackReceiver:
    """A local HTTP server that records the JSON bodies POSTed to it (the Slack webhook
    protocol: POST JSON, answer 200 "ok")."""

    server: ThreadingHTTPServer
    posts: list[dict[str, object]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def slack_receiver() -> Iterator[SlackReceiver]:
    received: list[dict[str, object]] = []
    raw: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            raw.append(f"{self.path}\n{body}")
            received.append(json.loads(body))
            self.answer(200, b"ok")

    with serving(Handler) as server:
        yield SlackReceiver(server, received, raw)


def new_port() -> int:
    return free_port("127.0.0.1")


def the_failed_look(root: Path, stage: str = "canary-1") -> tuple[str, dict[str, str]]:
    """The message and properties of the one ``health@`` look of ``stage`` that failed
    (there must be exactly one: the first failing look stops the hold)."""
    cases = stage_cases(root, stage)
    failed = [c for n, c in cases.items() if n.startswith("health@") and c[0] == "failure"]
    assert len(failed) == 1, cases
    _, message, props = failed[0]
    return message, props


def assert_failed_on_counted_errors(root: Path, source: str, label: str) -> dict[str, str]:
    """canary-1's failed look: the canary's errors as ``source`` counted them (each check
    on 10 samples at least), the message naming ``label``; its properties.  The threshold
    check (over 1 %) or the comparison with stable (Fisher, which gets the whole
    comparison budget on counted evidence) may decide first: either will do."""
    message, props = the_failed_look(root)
    failed = [
        c for c in ("error_rate", "compare_error_rate") if props[f"judge.{c}.verdict"] == "fail"
    ]
    assert failed, props
    for check in failed:
        assert props[f"judge.{check}.source"] == source
        assert int(props[f"judge.{check}.samples"]) >= 10
    assert f"{label}: canary error rate" in message
    return props


def assert_rollback_steps_passed(root: Path, stage: str = "canary-1") -> None:
    cases = stage_cases(root, stage)
    for step in ("rollback:traffic", "rollback:canary", "rollback:main"):
        assert cases[step][0] == "passed", cases[step]


@contextmanager
def fault_service(*args: str) -> Iterator[str]:
    """A fault service (``tests/services/fault_service.py`` with ``args``) on a free port,
    once its /health answers; its ``host:port``.  Ended (by its PID) afterwards."""
    from pytest_release.canary.platforms.local.runtimes import probe_health

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FAULT_SERVICE), "--port", str(port), *args],
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while not probe_health(endpoint, "/health", 0.2)[0]:
            assert proc.poll() is None, f"fault service {args} exited ({proc.returncode})"
            assert time.monotonic() < deadline, f"fault service {args} did not come up"
            time.sleep(0.02)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def canary_project(pytester: pytest.Pytester, **toml: Any) -> int:
    """A canary project (``canary_toml(**toml)``) whose main runs v1 behind a router on a
    new port; the port."""
    from tests.support.spine import project

    port = new_port()
    project(pytester, canary_toml(router_port=port, **toml))
    bootstrap_main(pytester.path, port)
    return port

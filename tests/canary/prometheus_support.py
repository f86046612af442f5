"""A real Prometheus (and Alertmanager) on 127.0.0.1 for the judge's tests: generated
config, 1 s scrapes, ended by PID afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_release.system.processes import free_port


@dataclass(frozen=True)
class Prometheus:
    url: str  # where the stage under test reaches it
    config_path: Path
    log_path: Path
    test_url: str = ""  # where this test process reaches it, when not at ``url``

    def query(self, promql: str) -> list[dict[str, object]]:
        from urllib.parse import urlencode

        with urllib.request.urlopen(
            f"{self.test_url or self.url}/api/v1/query?{urlencode({'query': promql})}", timeout=5
        ) as response:
            body = json.loads(response.read())
        result: list[dict[str, object]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, object]]:
        """Poll until ``promql`` returns a non-empty result (e.g. the first scrape)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                log = self.log_path.read_text(errors="replace")[-2000:]
                raise AssertionError(f"Prometheus: {promql} stayed empty for {timeout} s\n{log}")
            time.sleep(0.2)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(
            f"{binary} is not installed: run scripts/install-system-deps.sh "
            "(apt-get install -y prometheus prometheus-alertmanager)"
        )
    return path


@contextmanager
def running_prometheus(
    workdir: Path,
    targets: Sequence[str],
    *,
    rules: str = "",
    alertmanager: str | None = None,
    file_sd: Path | None = None,
    port: int | None = None,
    wrap: Callable[[list[str]], list[str]] = list,
    test_url: str = "",
) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (host:port, path /metrics) every second, and the
    targets listed in the JSON file ``file_sd`` (re-read when it changes).  ``wrap`` wraps
    its command (e.g. to run it in another network namespace, listening on ``port`` of
    that namespace's loopback); ``test_url`` is then where this process reaches it."""
    binary = _need("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    lines = [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: canary",
        "    static_configs:",
        f"      - targets: {json.dumps(list(targets))}",
    ]
    if file_sd is not None:
        lines += [
            "  - job_name: replicas",
            "    file_sd_configs:",
            f"      - files: [{json.dumps(str(file_sd))}]",
            "        refresh_interval: 1s",
        ]
    if rules:
        (workdir / "rules.yml").write_text(rules, encoding="utf-8")
        lines += ["rule_files:", f"  - {workdir / 'rules.yml'}"]
    if alertmanager:
        lines += [
            "alerting:",
            "  alertmanagers:",
            "    - static_configs:",
            f"        - targets: [{json.dumps(alertmanager)}]",
        ]
    config = workdir / "prometheus.yml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            wrap(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                ]
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(test_url or url, proc, log, "Prometheus")
        yield Prometheus(url, config, log, test_url)
    finally:
        proc.terminate()
        proc.wait(15)


@contextmanager
def running_alertmanager(workdir: Path) -> Iterator[str]:
    """Alertmanager on 127.0.0.1 with a receiver that sends nowhere; yields its URL."""
    binary = _need("prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    port, cluster = free_port(), free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: none\n  group_wait: 0s\nreceivers:\n  - name: none\n",
        encoding="utf-8",
    )
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--cluster.listen-address=127.0.0.1:{cluster}",
    ]
    with _serving("Alertmanager", argv, port, workdir / "alertmanager.log") as url:
        yield url


@contextmanager
def _serving(name: str, argv: list[str], port: int, log: Path) -> Iterator[str]:
    """``argv`` (a server on 127.0.0.1:``port``, its output in ``log``) until its ready
    endpoint answers; its URL.  Ended (by its PID) afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log, name)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)

"""The example shop's /metrics, scraped by a real Prometheus: what the judge's custom
Prometheus queries count per version."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pytest_release.system.processes import free_port
from tests.canary.prometheus_support import running_prometheus

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _label(series: dict[str, object], name: str) -> str:
    metric = series["metric"]
    assert isinstance(metric, dict)
    return str(metric[name])


def _value(series: dict[str, object]) -> int:
    value = series["value"]
    assert isinstance(value, list)
    return int(value[1])


def test_shop_metrics_count_app_requests_by_version_and_code(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SHOP), "PORT": str(port), "SHOP_VERSION": "9.9.9"}
    env["SHOP_ERROR_RATE"] = "0.5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shop"], env=env, stderr=subprocess.DEVNULL, cwd=SHOP
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if _get(f"{base}/health") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the shop did not come up"
            time.sleep(0.05)
        codes = [_get(f"{base}/api/products") for _ in range(10)]
        _get(f"{base}/version")  # not an app request: not counted
        with running_prometheus(tmp_path / "prom", [f"127.0.0.1:{port}"]) as prom:
            result = prom.wait_for('http_requests_total{version="9.9.9"}')
            counted = {_label(r, "code"): _value(r) for r in result}
            durations = prom.wait_for('http_request_duration_seconds_count{version="9.9.9"}')
    finally:
        proc.terminate()
        proc.wait(10)
    assert counted == {str(c): codes.count(c) for c in set(codes)}
    assert counted.get("500", 0) > 0
    assert _value(durations[0]) == 10

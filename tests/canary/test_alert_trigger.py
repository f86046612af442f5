"""Alertmanager as a rollback trigger: a real Alertmanager, alerts posted to its API and
alerts sent by a real Prometheus from a rule on the canary's error ratio."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_release.canary.evidence.alertmanager import AlertmanagerConfig, firing_alerts
from pytest_release.canary.judge.alerts import alerts_check
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.system.processes import free_port
from tests.canary.canary_support import (
    assert_rollback_steps_passed,
    bootstrap_main,
    canary_root,
    canary_toml,
    new_port,
    platform_config,
    the_failed_look,
)
from tests.canary.prometheus_support import running_alertmanager, running_prometheus
from tests.canary.test_prometheus_evidence import _bootstrap
from tests.canary.test_router_evidence import _real_traffic, _rolled_back
from tests.support.spine import XDIST_MODES, project, run_stage, stage_cases
from tests.support.threads import in_background

__all__ = ["canary_root"]


def _post_alert(url: str, labels: dict[str, str]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "test"}}]).encode()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@contextmanager
def _when_canary_runs(root: Path, action: object) -> Iterator[None]:
    """Run ``action()`` in a thread as soon as the stage's canary replica is up."""

    def wait_then_act(stop: threading.Event) -> None:
        platform = LocalPlatform(platform_config(), root)
        while not stop.is_set():
            try:
                if platform.status().group("canary"):
                    assert callable(action)
                    action()
                    return
            except Exception:  # the state file is being written: look again
                pass
            time.sleep(0.2)

    with in_background(wait_then_act):
        yield


def _alert_failure(root: Path) -> tuple[str, dict[str, str]]:
    message, props = the_failed_look(root)
    assert props["judge.alerts.verdict"] == "fail"
    assert props["judge.alerts.source"] == "alertmanager"
    assert_rollback_steps_passed(root)
    return message, props


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_alert_posted_to_alertmanager_during_the_hold_rolls_back_at_once(
    pytester: pytest.Pytester, canary_root: Path, tmp_path: Path, xdist: list[str]
) -> None:
    port = new_port()
    with running_alertmanager(tmp_path / "am") as am:
        judge = {"alertmanager": {"url": am, "service": "shop", "interval": "0.5s"}}
        project(pytester, canary_toml(router_port=port, hold="60s", interval="2s", judge=judge))
        bootstrap_main(canary_root, port)
        # Not matching: a warning, and a critical alert of another service.
        _post_alert(am, {"alertname": "DiskSlow", "severity": "warning", "service": "shop"})
        _post_alert(am, {"alertname": "OtherDown", "severity": "critical", "service": "billing"})

        def fire() -> None:
            labels = {"alertname": "CanaryBurning", "severity": "critical", "service": "shop"}
            _post_alert(am, labels)

        with _when_canary_runs(canary_root, fire):
            result = run_stage(pytester, "canary-1", "--image=v2", *xdist)
    assert result.ret == 1, result.stdout.str()
    message, props = _alert_failure(canary_root)
    assert "CanaryBurning" in message
    assert 'severity="critical"' in message
    assert "firing since" in message
    assert "DiskSlow" not in message
    assert "OtherDown" not in message
    assert json.loads(props["judge.alerts.CanaryBurning.labels"])["service"] == "shop"
    assert props["judge.alerts.CanaryBurning.since"]
    # At once: the intervals after the failed one were never judged.
    cases = stage_cases(canary_root, "canary-1")
    health = [n for n in cases if n.startswith("health@")]
    failed = next(n for n in health if cases[n][0] == "failure")
    assert health.index(failed) < len(health) - 1
    assert all(cases[n][0] == "skipped" for n in health[health.index(failed) + 1 :])
    _rolled_back(canary_root)


RULES = """
groups:
  - name: canary
    rules:
      - alert: CanaryErrorRatio
        expr: >
          max by (proxy, server) (
            rate(haproxy_server_http_responses_total{code="5xx"}[5s])
            / on (proxy, server)
            sum by (proxy, server) (rate(haproxy_server_http_responses_total[5s]))
          ) > 0.1
        labels:
          severity: critical
          service: shop
"""


def test_alert_from_a_prometheus_rule_on_the_canary_error_ratio_rolls_back(
    pytester: pytest.Pytester,
    canary_root: Path,
    tmp_path: Path,
) -> None:
    port, metrics_port = new_port(), new_port()
    _bootstrap(canary_root, port, metrics_port)
    with (
        running_alertmanager(tmp_path / "am") as am,
        running_prometheus(
            tmp_path / "prom",
            [f"127.0.0.1:{metrics_port}"],
            rules=RULES,
            alertmanager=am.removeprefix("http://"),
        ),
    ):
        # The judge's own checks are lenient here: only the alert may roll back (latency
        # too: on a loaded machine both versions' p95 passed 2 s and the look was
        # insufficient before the alert fired).
        judge = {
            "max_error_rate": 0.9,
            "sustained_error_rate": 0.9,
            "max_p95_latency_ms": 60000,
            "comparison": {"enabled": False},
            "alertmanager": {"url": am, "service": "shop", "interval": "0.5s"},
        }
        toml = canary_toml(router_port=port, hold="90s", interval="3s", judge=judge).replace(
            f"[gates.canary.router]\nport = {port}",
            f"[gates.canary.router]\nport = {port}\nmetrics_port = {metrics_port}",
        )
        project(pytester, toml)
        with _real_traffic(port, threads=3):
            result = run_stage(pytester, "canary-1", "--image=v2-errors-20")
    assert result.ret == 1, result.stdout.str()
    message, props = _alert_failure(canary_root)
    assert "CanaryErrorRatio" in message
    assert 'proxy="app"' in message
    assert json.loads(props["judge.alerts.CanaryErrorRatio.labels"])["severity"] == "critical"
    _rolled_back(canary_root)


def test_alertmanager_down_is_insufficient_never_a_pass() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    read = firing_alerts(AlertmanagerConfig(url=url, timeout=2))
    assert read.error is not None
    check = alerts_check([read], time.time() - 1, time.time())
    assert check.verdict == "insufficient"
    assert url in check.message

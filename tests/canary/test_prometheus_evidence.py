"""Prometheus evidence: a real Prometheus scraping HAProxy 2.6's built-in exporter.

A canary stage judged from Prometheus alone (``judge.evidence = ["prometheus"]``,
``sampler.rate = 0``: only the test's real traffic through HAProxy) rolls back a bad
canary; Prometheus down, a missing series and a stale series are each ``insufficient``
with the reason, never a pass.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_release.canary.evidence.prometheus import (
    PrometheusEvidence,
    PrometheusEvidenceConfig,
)
from pytest_release.canary.judge import Judge, JudgeConfig
from pytest_release.canary.platforms.local.platform import LocalPlatform
from pytest_release.canary.rollout import Rollout
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.router import HAProxyRouter
from pytest_release.canary.samples import Target
from pytest_release.system.processes import free_port
from tests.canary.canary_support import (
    assert_failed_on_counted_errors,
    assert_rollback_steps_passed,
    bootstrap_main,
    canary_root,
    canary_toml,
    new_port,
    platform_config,
)
from tests.canary.prometheus_support import running_prometheus
from tests.canary.test_router_evidence import _promoted_looks, _real_traffic, _rolled_back
from tests.support.http_server import QuietHandler, address, serving
from tests.support.spine import XDIST_MODES, project, run_stage
from tests.support.threads import in_background

__all__ = ["canary_root"]

SERIES = "haproxy_server_http_responses_total"


def _bootstrap(root: Path, port: int, metrics_port: int) -> None:
    """Production: main v1 behind an HAProxy that also serves its Prometheus exporter."""
    platform = LocalPlatform(platform_config(), root)
    router = HAProxyRouter(HAProxyConfig(port=port, metrics_port=metrics_port), platform.state_dir)
    Rollout(platform, router, stable_image="v1", stable_replicas=1).ensure_main()


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_canary_judged_from_a_real_prometheus_is_rolled_back(
    pytester: pytest.Pytester,
    canary_root: Path,
    tmp_path: Path,
    xdist: list[str],
) -> None:
    port, metrics_port = new_port(), new_port()
    _bootstrap(canary_root, port, metrics_port)
    with running_prometheus(tmp_path / "prom", [f"127.0.0.1:{metrics_port}"]) as prom:
        prom.wait_for(f'{SERIES}{{proxy="app"}}')
        judge = {
            "evidence": ["prometheus"],
            "min_requests": 10,
            "prometheus": {"url": prom.url, "template": "haproxy", "lag": "2s"},
        }
        toml = canary_toml(
            router_port=port,
            hold="12s",
            interval="3s",
            sampler={"rate": 0, "direct_rate": 0},
            judge=judge,
        ).replace(
            f"[gates.canary.router]\nport = {port}",
            f"[gates.canary.router]\nport = {port}\nmetrics_port = {metrics_port}",
        )
        project(pytester, toml)
        with _real_traffic(port, threads=3):
            result = run_stage(pytester, "canary-1", "--image=v2-errors-20", *xdist)
    assert result.ret == 1, result.stdout.str()
    assert_failed_on_counted_errors(canary_root, "prometheus", "prometheus (haproxy queries)")
    assert_rollback_steps_passed(canary_root)
    _rolled_back(canary_root)


@contextmanager
def _replica_targets(root: Path, path: Path) -> Iterator[None]:
    """Keep ``path`` (Prometheus file_sd) listing every replica the platform runs."""
    path.write_text("[]", encoding="utf-8")

    def write(stop: threading.Event) -> None:
        platform = LocalPlatform(platform_config(), root)
        written = ""
        while not stop.wait(0.2):
            try:
                endpoints = sorted(r.endpoint for r in platform.status().replicas)
            except Exception:  # the state file is being written: look again
                continue
            text = json.dumps([{"targets": endpoints}])
            if text != written:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)
                written = text

    with in_background(write):
        yield


def test_good_canary_judged_from_the_replicas_own_metrics_is_promoted(
    pytester: pytest.Pytester, canary_root: Path, tmp_path: Path
) -> None:
    """A custom template over the fault service's /metrics (http_requests_total by
    version), the replicas found by Prometheus file_sd."""
    port = new_port()
    bootstrap_main(canary_root, port)
    targets = tmp_path / "targets.json"
    with (
        _replica_targets(canary_root, targets),
        running_prometheus(tmp_path / "prom", [], file_sd=targets) as prom,
    ):
        prom.wait_for('http_requests_total{version="v1"}')
        prometheus = {
            "url": prom.url,
            "template": "custom",
            "requests": "sum(http_requests_total{{selector}})",
            "errors": 'sum(http_requests_total{{selector},code="500"})',
            "latency_ms": "1000 * sum(http_request_duration_seconds_sum{{selector}}) / "
            "sum(http_request_duration_seconds_count{{selector}})",
            "canary_selector": 'version="v2"',
            "stable_selector": 'version="v1"',
            # A new replica is found (file_sd) and scraped a few seconds after it starts.
            "lag": "3s",
        }
        judge = {
            "evidence": ["prometheus"],
            "min_requests": 10,
            "comparison": {"min_samples": 10, "latency_tolerance_ms": 100},
            "prometheus": prometheus,
            # Prometheus hands discovered targets to its scrapers at most every 5 s
            # (the discovery manager's update throttle), so the new replica may be
            # scraped only 5-6 s after it starts, more on a loaded machine: the first
            # interval may then be insufficient ("nothing scraped yet"), which the
            # stage allows once; it never counts as a pass.
            "max_insufficient_intervals": 1,
        }
        sampler = {"rate": 0, "direct_rate": 0}
        project(
            pytester,
            canary_toml(router_port=port, hold="20s", interval="5s", sampler=sampler, judge=judge),
        )
        cases, looks = _promoted_looks(pytester, canary_root, port)
    passed = [c for c in looks if c[0] == "passed"]
    assert len(looks) == 4, cases
    assert len(passed) >= 3, cases
    if len(passed) == 3:  # the one look allowed to be insufficient is the first
        outcome, message, _ = looks[0]
        assert outcome == "skipped", cases
        assert "nothing scraped yet" in message, cases
    for _, _, props in passed:
        assert props["judge.error_rate.source"] == "prometheus"
        assert props["judge.error_rate.verdict"] == "pass"
        assert int(props["judge.error_rate.samples"]) >= 10
        assert props["judge.p95_latency.verdict"] == "pass"
    assert cases["verdict"][0] == "passed"


def _judge_error_rate(evidence: PrometheusEvidence, start: float, end: float) -> tuple[str, str]:
    config = JudgeConfig(evidence=("prometheus",), max_restarts=None)
    judge = Judge(config, planned_looks=1)
    verdict = judge.judge_interval([], [], start, end, prometheus=evidence.evidence())
    check = verdict.check("error_rate")
    assert check is not None
    assert check.source == "prometheus"
    assert verdict.verdict != "pass"
    return check.verdict, check.message


def _evidence(url: str, selectors: dict[Target, str]) -> PrometheusEvidence:
    config = PrometheusEvidenceConfig(url=url, template="haproxy", max_staleness=5.0)
    return PrometheusEvidence(config, lambda: selectors)


def test_prometheus_down_is_insufficient_with_the_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    evidence = _evidence(url, {"stable": 'server="a"', "canary": 'server="b"'})
    now = time.time()
    evidence.collect(now - 2, now)
    verdict, message = _judge_error_rate(evidence, now - 2, now)
    assert verdict == "insufficient"
    assert "could not be read" in message
    assert url in message


@contextmanager
def _exporter(lines: list[str]) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """A stand-in /metrics endpoint (HAProxy's exporter names) the test can stop."""
    body = ("\n".join(lines) + "\n").encode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.answer(200, body, "text/plain; version=0.0.4")

    with serving(Handler) as server:
        yield address(server), server


def test_missing_and_stale_series_are_insufficient_never_a_pass(tmp_path: Path) -> None:
    lines = [
        f'{SERIES}{{proxy="app",server="slot0",code="2xx"}} 100',
        f'{SERIES}{{proxy="app",server="slot1",code="2xx"}} 100',
    ]
    selectors: dict[Target, str] = {"stable": 'server="slot0"', "canary": 'server="slot1"'}
    with (
        _exporter(lines) as (target, server),
        running_prometheus(tmp_path / "prom", [target]) as prom,
    ):
        for slot in ("slot0", "slot1"):  # scraped at least once, seen by a subquery
            prom.wait_for(f'max_over_time(timestamp({SERIES}{{server="{slot}"}})[10s:1s])')
        # Missing: no series matches the canary's selector.
        missing = _evidence(prom.url, {**selectors, "canary": 'server="slot9"'})
        now = time.time()
        missing.collect(now - 2, now)
        verdict, message = _judge_error_rate(missing, now - 2, now)
        assert verdict == "insufficient"
        assert "no canary series" in message
        # A custom query over the same counters reads (no data yet is no error, just 0).
        custom = PrometheusEvidenceConfig(
            url=prom.url,
            template="custom",
            requests=f"sum({SERIES}{{{{selector}}}})",
            errors=f'sum({SERIES}{{{{selector}},code="5xx"}})',
        )
        counted = PrometheusEvidence(custom, lambda: selectors)
        now = time.time()
        counted.collect(now - 2, now)
        assert counted.evidence().errors == ()
        assert counted.evidence().reads == 1
        # Stale: the target stops answering; its newest samples age past max_staleness (5 s).
        server.shutdown()
        server.server_close()
        prom.wait_for('up{job="canary"} == 0')
        stopped = time.time()
        stale = _evidence(prom.url, selectors)
        while time.time() < stopped + 6:
            time.sleep(0.2)
        now = time.time()
        stale.collect(now - 2, now)
        verdict, message = _judge_error_rate(stale, now - 2, now)
        assert verdict == "insufficient"
        assert "stale stable series" in message, message

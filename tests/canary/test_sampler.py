"""The sampler: bounded load, /health probes and platform status against real services,
and the Prometheus HTTP API client against a Prometheus-API test server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from pytest_release.canary.sampler import (
    MetricSample,
    PrometheusClient,
    PrometheusConfig,
    PrometheusError,
    Sampler,
    SamplerConfig,
    Targets,
    check_metrics,
)
from pytest_release.canary.samples import ReplicaStatus
from pytest_release.system.processes import free_port
from tests.canary.canary_support import fault_service
from tests.support.http_server import QuietHandler, address, serving


def _run(sampler: Sampler, seconds: float) -> None:
    sampler.start()
    try:
        time.sleep(seconds)
    finally:
        sampler.stop()


def test_samples_keep_target_kind_outcome_and_replica() -> None:
    with (
        fault_service("--version", "v1") as stable,
        fault_service("--version", "v2", "--error-rate", "0.5") as canary,
    ):
        statuses = [
            ReplicaStatus(0.0, "r1", "stable", "v1", True, True, 0, stable),
            ReplicaStatus(0.0, "r2", "canary", "v2", True, True, 0, canary),
        ]
        calls: list[float] = []

        def status() -> list[ReplicaStatus]:
            calls.append(time.time())
            return statuses

        config = SamplerConfig(
            rate=10, direct_rate=20, health_interval=0.2, status_interval=0.2, timeout=5
        )
        targets = Targets(
            router_url=f"http://{stable}",
            stable=(stable,),
            canary=(canary,),
            names={stable: "r1", canary: "r2"},
        )
        sampler = Sampler(config, targets, status=status)
        start = time.time()
        _run(sampler, 1.5)
        samples = sampler.samples()
    http = [s for s in samples if s.kind == "http"]
    by_target = {t: [s for s in http if s.target == t] for t in ("router", "stable", "canary")}
    assert all(by_target.values())
    assert all(s.ok and s.status_code == 200 for s in by_target["stable"])
    assert {s.replica for s in by_target["stable"]} == {"r1"}
    failed = [s for s in by_target["canary"] if not s.ok]
    assert 0 < len(failed) < len(by_target["canary"])
    assert all(s.status_code == 500 and "-> 500" in s.detail for s in failed)
    assert all(s.latency_ms is not None and s.latency_ms >= 0 for s in http)
    assert all(start <= s.timestamp <= time.time() for s in samples)
    health = [s for s in samples if s.kind == "health"]
    assert {(s.target, s.replica) for s in health} == {("stable", "r1"), ("canary", "r2")}
    assert all(s.ok for s in health)
    recorded = sampler.statuses()
    assert len(calls) >= 3
    assert len(recorded) == 2 * len(calls)
    # Windows select by start time.
    middle = start + 0.75
    before, after = sampler.samples(None, middle), sampler.samples(middle, None)
    assert len(before) + len(after) == len(samples)
    assert all(s.timestamp < middle for s in before)
    assert all(s.timestamp >= middle for s in after)


def test_load_is_bounded_by_rate_concurrency_and_total() -> None:
    with fault_service("--version", "v2", "--latency-ms", "400") as slow:
        # Two requests in flight at most: 50/s cannot be reached against 400 ms answers.
        config = SamplerConfig(rate=0, direct_rate=50, concurrency=2, health_interval=10)
        sampler = Sampler(config, Targets(None, (), (slow,)))
        _run(sampler, 1.0)
        sampler.settle(time.time())
        done = [s for s in sampler.samples() if s.kind == "http"]
        assert 2 <= sampler.requests_sent <= 2 * 4
        assert all(s.ok and s.latency_ms is not None and s.latency_ms >= 400 for s in done)

    with fault_service("--version", "v1") as fast:
        config = SamplerConfig(rate=100, direct_rate=100, max_requests=30, health_interval=10)
        sampler = Sampler(config, Targets(f"http://{fast}", (fast,), (fast,)))
        _run(sampler, 1.0)
        assert sampler.requests_sent == 30
        assert len([s for s in sampler.samples() if s.kind == "http"]) == 30


def test_timeouts_and_refused_connections_are_failed_samples() -> None:
    dead = f"127.0.0.1:{free_port()}"
    # The timeout is far below the slow service's 3 s and far above what a refused
    # connection takes even on a loaded machine (a short one turned refusals into
    # timeouts under load).
    with fault_service("--version", "v2", "--latency-ms", "3000") as slow:
        config = SamplerConfig(rate=0, direct_rate=5, timeout=1.5, health_interval=10)
        sampler = Sampler(config, Targets(None, (dead,), (slow,)))
        _run(sampler, 2.0)
        samples = [s for s in sampler.samples() if s.kind == "http"]
    slow_samples = [s for s in samples if s.target == "canary"]
    dead_samples = [s for s in samples if s.target == "stable"]
    assert slow_samples
    assert dead_samples
    assert all(not s.ok and s.latency_ms is None for s in samples)
    assert all("Timeout" in s.detail for s in slow_samples)
    assert all("ConnectError" in s.detail for s in dead_samples)


def test_sampler_config_errors() -> None:
    with pytest.raises(ValidationError, match="paths must start with '/'"):
        SamplerConfig(paths=("health",))
    with pytest.raises(ValidationError, match="must be more than 0 seconds"):
        SamplerConfig(health_interval=0)
    with pytest.raises(ValidationError, match="http\\(s\\) URL"):
        PrometheusConfig(url="prometheus:9090")


# -- Prometheus -----------------------------------------------------------------------------
@contextmanager
def prometheus_api_server() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A Prometheus-API test server: ``GET /api/v1/query`` answering in Prometheus's
    JSON format (vector, scalar, matrix, errors) for a few fixed queries."""
    seen: list[dict[str, list[str]]] = []

    answers: dict[str, tuple[int, object]] = {
        "up": (
            200,
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"job": "shop", "version": "v1"}, "value": [1700000000.5, "1"]},
                        {"metric": {"job": "shop", "version": "v2"}, "value": [1700000000.5, "0"]},
                    ],
                },
            },
        ),
        "error_ratio": (
            200,
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [1700000000.5, "0.25"]}],
                },
            },
        ),
        "scalar(42)": (
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [1700000000, "42"]}},
        ),
        "up[5m]": (
            200,
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
        ),
        "sum(": (
            400,
            {"status": "error", "errorType": "bad_data", "error": "parse error: unclosed"},
        ),
    }

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            seen.append(params)
            if url.path != "/api/v1/query":
                status, body = 404, {"status": "error", "errorType": "not_found", "error": "no"}
            else:
                status, body = answers.get(
                    params.get("query", [""])[0],
                    (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
                )
            self.answer(status, json.dumps(body).encode(), "application/json")

    with serving(Handler) as server:
        yield f"http://{address(server)}", seen


def test_prometheus_client_speaks_the_query_api() -> None:
    with prometheus_api_server() as (url, seen):
        client = PrometheusClient(url)
        result = client.query("up", "up", at=1700000000.5)
        assert [(m.labels["version"], m.value) for m in result] == [("v1", 1.0), ("v2", 0.0)]
        assert result[0].timestamp == 1700000000.5
        assert seen[-1] == {"query": ["up"], "time": ["1700000000.500"]}
        assert [m.value for m in client.query("answer", "scalar(42)")] == [42.0]
        assert client.query("none", "absent_metric") == []
        with pytest.raises(PrometheusError, match="HTTP 400, bad_data: parse error: unclosed"):
            client.query("broken", "sum(")
        with pytest.raises(PrometheusError, match="'matrix' result; use an instant query"):
            client.query("range", "up[5m]")
    with pytest.raises(PrometheusError, match=f"to {url}/api/v1/query failed: ConnectError"):
        PrometheusClient(url, timeout=1).query("up", "up")


def test_prometheus_queries_are_sampled_and_checked_against_bounds() -> None:
    with prometheus_api_server() as (url, seen):
        config = PrometheusConfig.model_validate(
            {
                "url": url,
                "queries": {
                    "error_ratio": {"query": "error_ratio", "max": 0.1},
                    "up": {"query": "up", "min": 1},
                    "broken": {"query": "sum("},
                },
            }
        )
        sampler_config = SamplerConfig(
            rate=0, direct_rate=0, status_interval=0.2, health_interval=10, prometheus=config
        )
        sampler = Sampler(sampler_config, Targets(None, (), ()))
        sampler.start()
        try:
            deadline = time.monotonic() + 15
            while len([m for m in sampler.metrics() if m.name == "error_ratio"]) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            sampler.stop()
        metrics = sampler.metrics()
    assert {m.name for m in metrics} == {"error_ratio", "up", "broken"}
    assert len([q for q in seen if q.get("query") == ["error_ratio"]]) >= 2
    failures, props = check_metrics(metrics, config)
    assert "prometheus error_ratio = 0.25 > max 0.1 (error_ratio)" in failures
    assert "prometheus up = 0 < min 1 (up)" in failures
    assert any(f.startswith("prometheus broken: query 'broken'") for f in failures)
    assert ("prometheus.error_ratio", "0.25") in props

    good = [MetricSample(1.0, "error_ratio", "error_ratio", 0.01)]
    assert check_metrics(
        good, PrometheusConfig(url=url, queries={"error_ratio": config.queries["error_ratio"]})
    ) == (
        [],
        [("prometheus.error_ratio", "0.01")],
    )

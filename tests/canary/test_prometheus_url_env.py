"""``judge.prometheus.url_env``: the Prometheus base URL from an environment variable (a CI
variable such as ``PROMETHEUS_URL``, set per job by the generated GitHub workflow), read
when the interval is judged; unset, empty or not a URL is insufficient evidence with the
reason, never a pass (issue 26, item 8: the GitHub profile's HTTP evidence)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_release.canary.evidence.prometheus import (
    PrometheusEvidence,
    PrometheusEvidenceConfig,
)
from pytest_release.canary.samples import Target
from pytest_release.system.processes import free_port
from tests.canary.prometheus_support import running_prometheus

SELECTORS: dict[Target, str] = {"stable": 'job="canary"', "canary": 'job="canary"'}


def _config(**values: str) -> PrometheusEvidenceConfig:
    # `up` exists for every scrape target, answering or not: a series to count.
    return PrometheusEvidenceConfig(
        template="custom", requests="sum(up{{selector}})", errors="sum(up{{selector}})", **values
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "give the Prometheus base URL as url = 'http://...' or name the environment"),
        ({"url": "http://127.0.0.1:9090", "url_env": "PROMETHEUS_URL"}, "(one of the two)"),
        ({"url_env": "PROMETHEUS URL"}, "must name an environment variable such as"),
        ({"url": "prometheus:9090"}, "must be an http(s) URL"),
    ],
)
def test_url_or_url_env_is_required_once(values: dict[str, str], expected: str) -> None:
    with pytest.raises(ValidationError) as error:
        _config(**values)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "the environment variable PROMETHEUS_URL is not set or empty"),
        ("  ", "the environment variable PROMETHEUS_URL is not set or empty"),
        ("prometheus.example.com", "PROMETHEUS_URL = 'prometheus.example.com' is not an http(s)"),
    ],
)
def test_an_unusable_url_env_is_no_evidence_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, value: str | None, reason: str
) -> None:
    if value is None:
        monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    else:
        monkeypatch.setenv("PROMETHEUS_URL", value)
    evidence = PrometheusEvidence(_config(url_env="PROMETHEUS_URL"), lambda: SELECTORS)
    now = time.time()
    evidence.collect(now - 2, now)
    read = evidence.evidence()
    assert read.reads == 0
    assert read.samples == ()
    [(_, message)] = read.errors
    assert reason in message


def test_the_url_is_read_from_the_environment_when_judging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = f"127.0.0.1:{free_port()}"  # a scrape target that never answers: up == 0
    with running_prometheus(tmp_path / "prom", [nothing]) as prom:
        prom.wait_for('up{job="canary"}')
        config = _config(url_env="PROMETHEUS_URL")
        evidence = PrometheusEvidence(config, lambda: SELECTORS)
        monkeypatch.setenv("PROMETHEUS_URL", prom.url + "/")
        now = time.time()
        evidence.collect(now - 2, now)
        assert evidence.evidence().errors == ()
        assert evidence.evidence().reads == 1
        # Changed between intervals (a new job, another variable): the new value is used.
        monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
        later = time.time()
        evidence.collect(later - 2, later)
        [(_, message)] = evidence.evidence().errors
        assert "127.0.0.1" in message
        assert prom.url not in message

"""``judge.prometheus.template`` names the queries a router offers in its registration
(``RouterPlugin.prometheus_queries``), so a router plug-in's exporter is judged like
HAProxy's: here a stand-in router (``standin-lb``, a registration only, named as such: its
router is never built) installed as a distribution of its own, its queries asked of a real
Prometheus scraping a stand-in exporter of its metric names.  A template no router
registers is a usage error naming the value and the registered ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_release.canary.evidence.prometheus import (
    PrometheusEvidence,
    PrometheusEvidenceConfig,
)
from pytest_release.canary.samples import Target
from tests.canary.canary_support import canary_toml, new_port
from tests.canary.plugin_support import distribution, registered
from tests.canary.prometheus_support import running_prometheus
from tests.support.http_server import address, serving_reads
from tests.support.spine import project, run_stage

STANDIN_ROUTER = '''
"""A stand-in third-party router: a registration only (its router is never built)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pytest_release.canary.evidence.prometheus_queries import Queries
from pytest_release.canary.registry import RouterPlugin


class StandinLbRouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["standin-lb"] = "standin-lb"


ROUTER = RouterPlugin(
    config=StandinLbRouterConfig,
    summary="a stand-in router of the tests",
    prometheus_queries=Queries(
        requests="sum(standinlb_requests_total{{selector}})",
        errors='sum(standinlb_requests_total{{selector},outcome="failed"})',
        latency_ms=None,
        freshness="max(max_over_time(timestamp(standinlb_requests_total{{selector}})"
        "[{lookback}:1s]))",
        latency_note="the stand-in's own mean",
    ),
)
'''

SERIES = "standinlb_requests_total"
SELECTORS: dict[Target, str] = {"stable": 'version="stable"', "canary": 'version="canary"'}


@pytest.fixture
def standin_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stand-in router as an installed distribution, here and on the stages' PYTHONPATH."""
    site = distribution(
        tmp_path / "site",
        "standin-lb",
        "pytest_release.routers",
        "standin-lb = standin_lb_router:ROUTER",
        {"standin_lb_router": STANDIN_ROUTER},
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    with registered(site, monkeypatch):
        yield site


def _scrape_body(scrapes: int) -> bytes:
    """The stand-in exporter after ``scrapes`` scrapes: 50 requests per version each,
    10 of the canary's failed (stable fails none: it has no failed series)."""
    lines = [
        f'{SERIES}{{version="stable",outcome="ok"}} {50 * scrapes}',
        f'{SERIES}{{version="canary",outcome="ok"}} {40 * scrapes}',
        f'{SERIES}{{version="canary",outcome="failed"}} {10 * scrapes}',
    ]
    return ("\n".join(lines) + "\n").encode()


def test_a_plugin_routers_registered_queries_count_each_version(
    standin_router: Path, tmp_path: Path
) -> None:
    failed = f'{SERIES}{{version="canary",outcome="failed"}}'
    with (
        serving_reads(lambda n: (_scrape_body(n), "text/plain; version=0.0.4")) as (server, _),
        running_prometheus(tmp_path / "prom", [address(server)]) as prom,
    ):
        prom.wait_for(failed)
        start = time.time()
        seen = float(prom.query(failed)[0]["value"][1])  # type: ignore[index]
        # The interval ends once a scrape after its start is in (waited on, not slept).
        prom.wait_for(f"{failed} > {seen}")
        end = time.time()
        config = PrometheusEvidenceConfig(url=prom.url, template="standin-lb")
        counted = PrometheusEvidence(config, lambda: SELECTORS)
        counted.collect(start, end)
    evidence = counted.evidence()
    assert evidence.errors == ()
    assert evidence.reads == 1
    assert evidence.label == "prometheus (standin-lb queries)"
    assert not evidence.has_latency  # the stand-in offers no latency query
    canary = [s for s in evidence.samples if s.target == "canary"]
    stable = [s for s in evidence.samples if s.target == "stable"]
    # Counted by the plug-in's metric names: each version's requests over the interval,
    # the canary's failed ones a fifth of them, stable's none.
    assert len(canary) >= 50, len(canary)
    assert len(stable) >= 50, len(stable)
    assert sum(not s.ok for s in canary) * 5 == len(canary)
    assert all(s.ok for s in stable)


def test_an_unregistered_template_is_a_usage_error_naming_the_registered_ones(
    pytester: pytest.Pytester, standin_router: Path
) -> None:
    judge = {
        "evidence": ["prometheus"],
        "prometheus": {"url": "http://127.0.0.1:9090", "template": "standin"},
    }
    project(pytester, canary_toml(router_port=new_port(), judge=judge))
    result = run_stage(pytester, "canary-1", "--image=v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    lines = [line.strip() for line in result.stderr.lines if line.strip()]
    assert lines[-1] == (
        "gates.canary.judge.prometheus.template = 'standin': Value error, 'standin' is not a "
        "registered router's queries; registered: 'haproxy', 'traefik', 'standin-lb', "
        "'custom' (a router plug-in offers its exporter's queries in its registration, "
        "RouterPlugin.prometheus_queries)"
    ), lines

"""The built-in evidence sources as they register (entry points of
``pytest_release.evidence`` in pytest-release's own ``pyproject.toml``): the name is what a
user writes in ``judge.evidence``, the table of one with a config is ``judge.<name>``."""

from __future__ import annotations

from pytest_release.canary.evidence.alertmanager import AlertmanagerConfig
from pytest_release.canary.evidence.prometheus import PrometheusEvidenceConfig
from pytest_release.canary.registry import EvidencePlugin

# The sampler's own requests straight to each version's replicas: the hold makes them.
SAMPLER = EvidencePlugin(summary="the sampler's own requests to each version (default)")
ROUTER = EvidencePlugin(
    summary="what the router counted per version: real traffic",
    build="pytest_release.canary.evidence.router_source:build",
    router_capability="counters",
)
PROMETHEUS = EvidencePlugin(
    summary="per-version request and error counts from Prometheus queries: url, template "
    "(haproxy, traefik, custom) and version selectors",
    build="pytest_release.canary.evidence.prometheus:build",
    config=PrometheusEvidenceConfig,
    example="judge.prometheus = { url = 'http://127.0.0.1:9090', template = 'haproxy' }",
)
# Not named in judge.evidence: its table switches it on (the ``alerts`` check).
ALERTMANAGER = EvidencePlugin(
    summary="roll back at once when a matching alert fires during the hold (the alerts "
    "check): url, labels (default severity = critical), service. Unset: off",
    build="pytest_release.canary.evidence.alertmanager:build",
    config=AlertmanagerConfig,
    kind="alerts",
)

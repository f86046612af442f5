"""Router evidence from the local HAProxy: its ``show stat`` counters, read over the
runtime API of the router the rollout drives (see
:mod:`pytest_release.canary.evidence.router_stats`), and the label matchers of each
version's series in HAProxy's own Prometheus exporter.  Both are named by HAProxy's
registration (``entry.py``)."""

from __future__ import annotations

from pytest_release.canary.evidence.router_stats import RouterStatsPoller, member_groups
from pytest_release.canary.routers.haproxy.router import BACKEND, HAProxyRouter
from pytest_release.canary.samples import Target
from pytest_release.errors import EvidenceError


def _haproxy(router: object) -> HAProxyRouter:
    if not isinstance(router, HAProxyRouter):
        raise EvidenceError(
            "judge.evidence includes 'router', which reads the local HAProxy router's "
            f"counters, but this rollout's router is {type(router).__name__}"
        )
    return router


def haproxy_stats_poller(router: object, interval: float) -> RouterStatsPoller:
    """A poller of ``router``'s per-server counters; groups follow its members live."""
    haproxy = _haproxy(router)

    def read() -> str:
        state = haproxy._load()
        return haproxy._command(state, "show stat")

    def groups() -> dict[str, Target]:
        weights = haproxy.weights()
        return member_groups(weights.stable_members, weights.canary_members)

    return RouterStatsPoller(read, groups, backend=BACKEND, interval=interval)


def prometheus_selectors(router: object) -> dict[Target, str]:
    """Each version's series in HAProxy's exporter: its current servers (a version
    without servers is left out)."""
    if not isinstance(router, HAProxyRouter):
        return {}
    weights = router.weights()
    servers = router.server_endpoints()
    groups: tuple[tuple[Target, tuple[str, ...]], ...] = (
        ("stable", weights.stable_members),
        ("canary", weights.canary_members),
    )
    selectors: dict[Target, str] = {}
    for target, members in groups:
        names = sorted(name for name, ep in servers.items() if ep in members)
        if names:
            selectors[target] = f'proxy="{BACKEND}",server=~"{"|".join(names)}"'
    return selectors

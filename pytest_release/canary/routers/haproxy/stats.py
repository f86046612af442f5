"""Router evidence from the local HAProxy: its ``show stat`` counters, read over the
runtime API of the router the rollout drives (see
:mod:`pytest_release.canary.evidence.router_stats`)."""

from __future__ import annotations

from pytest_release.canary.evidence.router_stats import RouterStatsPoller, member_groups
from pytest_release.canary.routers.haproxy.router import BACKEND, HAProxyRouter
from pytest_release.canary.samples import Target


def haproxy_stats_poller(router: HAProxyRouter, interval: float) -> RouterStatsPoller:
    """A poller of ``router``'s per-server counters; groups follow its members live."""

    def read() -> str:
        state = router._load()
        return router._command(state, "show stat")

    def groups() -> dict[str, Target]:
        weights = router.weights()
        return member_groups(weights.stable_members, weights.canary_members)

    return RouterStatsPoller(read, groups, backend=BACKEND, interval=interval)

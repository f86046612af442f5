"""The ``router`` evidence source: what the gate's router counted per version.

The router says how its counters are read: its registration names a ``stats_poller``
(:class:`pytest_release.canary.registry.RouterPlugin`; HAProxy's reads ``show stat``), so
this module knows no router by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_release.canary.registry import registry
from pytest_release.errors import EvidenceError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pytest_release.canary.evidence.router_stats import RouterEvidence, RouterStatsPoller
    from pytest_release.canary.evidence.source import EvidenceContext


class RouterCounts:
    """A :class:`~pytest_release.canary.evidence.source.CountedSource` over the router's
    counters, read in the background by its poller."""

    def __init__(self, poller: RouterStatsPoller) -> None:
        self.poller = poller

    def start(self) -> None:
        self.poller.start()

    def settle(self, start: float, end: float) -> None:
        self.poller.settle(end)

    def evidence(self, end: float) -> RouterEvidence:
        return self.poller.evidence(end)

    def stop(self) -> None:
        self.poller.stop()


def build(table: BaseModel | None, context: EvidenceContext) -> RouterCounts:
    router_type = context.settings.router.type
    entry = registry().routers.get(router_type)
    router = getattr(context.rollout, "router", None)
    if entry is None or not entry.stats_poller or router is None:
        raise EvidenceError(
            "judge.evidence includes 'router', which reads the router's own per-version "
            f"counters, but router.type = {router_type!r} registers no reader of them "
            "(RouterPlugin.stats_poller); use 'sampler' or 'prometheus'"
        )
    module, _, function = entry.stats_poller.partition(":")
    poller: Callable[[object, float], RouterStatsPoller] = getattr(
        importlib.import_module(module), function
    )
    return RouterCounts(poller(router, context.settings.sampler.status_interval))

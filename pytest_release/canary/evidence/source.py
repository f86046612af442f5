"""A counted evidence source: what an entry of ``pytest_release.evidence`` builds.

Every source named in ``judge.evidence`` other than the sampler is a
:class:`CountedSource`: it counts requests and errors per version (the router's counters,
Prometheus, a plug-in's endpoint) and hands the judge a
:class:`~pytest_release.canary.evidence.router_stats.RouterEvidence` at every look.  The
hold starts it before the sampler, settles it once each interval is over, and stops it
at the end:

* ``start()``: take a baseline now (counters count from here);
* ``settle(start, end)``: the counts of ``[start, end)`` are in when this returns (read
  once more, or wait for a scrape lag, then ask);
* ``evidence(end)``: what it counted of the hold up to ``end``; a read that failed is kept
  in ``errors`` (the judge then reports the source's checks as insufficient with the
  reason, never as a pass), ``reads`` counts the reads that succeeded;
* ``stop()``: end any thread it started (idempotent).

:func:`build_source` builds one through its registration
(:class:`pytest_release.canary.registry.EvidencePlugin`): ``build = "module:function"``,
called as ``function(table, context)`` with the source's validated ``judge.<name>`` table
(None when it has none) and an :class:`EvidenceContext`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pytest_release.canary.registry import registry

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pytest_release.canary.evidence.router_stats import RouterEvidence
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings


@dataclass(frozen=True)
class EvidenceContext:
    """What a source may use when a hold starts: the rollout it watches (its platform and
    router), the canary gate's settings, and the hold's clock."""

    rollout: Rollout
    settings: CanarySettings
    clock: Callable[[], float] = time.time


@runtime_checkable
class CountedSource(Protocol):
    """Per-version request and error counts for the judge (see the module doc)."""

    def start(self) -> None: ...

    def settle(self, start: float, end: float) -> None: ...

    def evidence(self, end: float) -> RouterEvidence: ...

    def stop(self) -> None: ...


def build_source(name: str, table: BaseModel | None, context: EvidenceContext) -> CountedSource:
    """The source registered as ``name``, built by its plug-in from its ``table``."""
    entry = registry().evidence_source(name)
    module, _, function = entry.build.partition(":")
    build: Callable[[BaseModel | None, EvidenceContext], object] = getattr(
        importlib.import_module(module), function
    )
    source = build(table, context)
    if not isinstance(source, CountedSource):
        from pytest_release.errors import EvidenceError

        raise EvidenceError(
            f"evidence source {name!r}: {entry.build} returned {type(source).__name__}, which "
            "is not a CountedSource (start, settle, evidence, stop)"
        )
    return source

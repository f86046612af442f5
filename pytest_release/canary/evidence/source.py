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

    from pytest_release.canary.evidence.alertmanager import AlertsRead
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


@runtime_checkable
class AlertSource(Protocol):
    """A source of the ``alerts`` kind (Alertmanager): asked every ``interval`` seconds
    while a look waits; a firing alert ends the look and fails it."""

    @property
    def interval(self) -> float: ...

    def ask(self) -> AlertsRead: ...


def _built(name: str, table: BaseModel | None, context: EvidenceContext) -> tuple[str, object]:
    entry = registry().evidence_source(name)
    module, _, function = entry.build.partition(":")
    build: Callable[[BaseModel | None, EvidenceContext], object] = getattr(
        importlib.import_module(module), function
    )
    return entry.build, build(table, context)


def _not_a(name: str, built_by: str, source: object, protocol: str) -> Exception:
    from pytest_release.errors import EvidenceError

    return EvidenceError(
        f"evidence source {name!r}: {built_by} returned {type(source).__name__}, which is "
        f"not a{protocol}"
    )


def build_source(name: str, table: BaseModel | None, context: EvidenceContext) -> CountedSource:
    """The counted source registered as ``name``, built by its plug-in from its ``table``."""
    built_by, source = _built(name, table, context)
    if not isinstance(source, CountedSource):
        raise _not_a(name, built_by, source, " CountedSource (start, settle, evidence, stop)")
    return source


def build_alerts(name: str, table: BaseModel, context: EvidenceContext) -> AlertSource:
    """The alerts source registered as ``name``, built by its plug-in from its ``table``."""
    built_by, source = _built(name, table, context)
    if not isinstance(source, AlertSource):
        raise _not_a(name, built_by, source, "n AlertSource (interval, ask)")
    return source

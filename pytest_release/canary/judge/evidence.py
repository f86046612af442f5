"""What the judge knows at one look: the :class:`Evidence` of the hold so far.

Evidence comes from several sources (``judge.evidence``):

* ``sampler`` -- the sampler's own requests straight to each version's pods (one
  :class:`Sample` each, with its latency) and its /health probes;
* ``router`` / ``prometheus`` -- what the router, or Prometheus, counted per version
  (:class:`~pytest_release.canary.evidence.router_stats.RouterEvidence`: one latency-less
  sample per counted request, average latencies, failed reads);

plus the platform's replica statuses and the checks made outside the judge (the
Alertmanager ``alerts`` check).  A :class:`Window` is the part of one source's requests
a statistical test looks at: everything since the hold began, or the current interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_release.canary.samples import ReplicaStatus, Sample

if TYPE_CHECKING:
    from pytest_release.canary.evidence.router_stats import RouterEvidence
    from pytest_release.canary.judge.verdicts import CheckResult

SAMPLER = "sampler"


def _when(sample: Sample) -> float:
    return sample.timestamp


def canary_http(samples: Iterable[Sample]) -> list[Sample]:
    """The canary's HTTP requests (not /health probes, not requests through the front)."""
    return [s for s in samples if s.target == "canary" and s.kind == "http"]


def stable_http(samples: Iterable[Sample]) -> list[Sample]:
    return [s for s in samples if s.target == "stable" and s.kind == "http"]


@dataclass(frozen=True)
class Window:
    """The requests of both versions a test looks at, over ``[start, end)``."""

    label: str  # "since the hold began" or "in the interval"
    start: float
    end: float
    canary: tuple[Sample, ...]
    stable: tuple[Sample, ...]


def windows_of(
    everything: Sequence[Sample],
    interval: Sequence[Sample],
    hold_start: float,
    start: float,
    end: float,
) -> list[Window]:
    """The windows tested at a look: since the hold began, and (from the second look on,
    when it differs) the current interval ``[start, end)``."""
    cumulative = Window(
        "since the hold began",
        hold_start,
        end,
        tuple(canary_http(everything)),
        tuple(stable_http(everything)),
    )
    if hold_start >= start:
        return [cumulative]
    current = Window(
        "in the interval", start, end, tuple(canary_http(interval)), tuple(stable_http(interval))
    )
    return [cumulative, current]


@dataclass(frozen=True)
class SourceCounts:
    """What one source counted of the hold so far."""

    source: str
    canary: int
    canary_errors: int
    stable: int

    @classmethod
    def of(cls, source: str, samples: Iterable[Sample]) -> SourceCounts:
        canary = canary_http(samples)
        errors = sum(1 for s in canary if not s.ok)
        return cls(source, len(canary), errors, len(stable_http(samples)))


@dataclass(frozen=True)
class SourceRequests:
    """One source's requests of the hold up to the look's end, and its hold start."""

    source: str
    label: str  # how messages name the source ("router (HAProxy counters)")
    everything: tuple[Sample, ...]
    interval: tuple[Sample, ...]  # the part of the look's interval
    hold_start: float
    unavailable: str | None  # why the source cannot be judged at this look, if it cannot
    counted: RouterEvidence | None  # the counted evidence itself (None for the sampler)
    # Each source's part of the hold, when several are joined.
    parts: tuple[SourceCounts, ...] = ()

    def contributions(self) -> tuple[tuple[str, str], ...]:
        """JUnit details: how many canary and stable requests (and canary errors) each
        source contributed."""
        parts = self.parts or (SourceCounts.of(self.source, self.everything),)
        return tuple(
            (f"requests.{part.source}.{key}", str(count))
            for part in parts
            for key, count in (
                ("canary", part.canary),
                ("canary_errors", part.canary_errors),
                ("stable", part.stable),
            )
        )

    def windows(self, start: float, end: float) -> list[Window]:
        return windows_of(self.everything, self.interval, self.hold_start, start, end)


@dataclass(frozen=True)
class Evidence:
    """Everything known at one look of the hold, by source."""

    look: int  # 1-based
    start: float  # the look's interval [start, end)
    end: float
    hold_start: float  # the sampler's (the earliest evidence of the hold)
    samples: tuple[Sample, ...]  # the sampler's samples of the hold up to ``end``
    interval_samples: tuple[Sample, ...]  # the sampler's samples of the interval
    statuses: tuple[ReplicaStatus, ...]  # the platform's replica reports of the interval
    counted: Mapping[str, RouterEvidence | None] = field(default_factory=dict)
    extra: tuple[CheckResult, ...] = ()  # checks made outside the judge (alerts)

    @classmethod
    def at_look(
        cls,
        *,
        look: int,
        samples: Sequence[Sample],
        statuses: Sequence[ReplicaStatus],
        start: float,
        end: float,
        history: Sequence[Sample] = (),
        counted: Mapping[str, RouterEvidence | None] | None = None,
        extra: Sequence[CheckResult] = (),
    ) -> Evidence:
        """``samples`` are the interval's sampler samples, ``history`` the hold's so far
        (only its part before ``start`` is used)."""
        earlier = [s for s in history if s.timestamp < start]
        everything = sorted([*earlier, *samples], key=lambda s: s.timestamp)
        hold_start = min(start, everything[0].timestamp) if everything else start
        return cls(
            look=look,
            start=start,
            end=end,
            hold_start=hold_start,
            samples=tuple(everything),
            interval_samples=tuple(samples),
            statuses=tuple(statuses),
            counted=dict(counted or {}),
            extra=tuple(extra),
        )

    def joined(self, sources: Sequence[str]) -> SourceRequests:
        """The requests of all ``sources`` together.  No request is counted twice: the
        sampler's own requests go straight to a version's replicas (target ``canary`` or
        ``stable``) and so never pass through the router, whose counters hold everything
        that did (the sampler's requests through the front, target ``router``, are left to
        the router's counts; see :func:`canary_http`).  Two counted sources would count
        the same front traffic, so the judge joins the sampler with one of them."""
        if len(sources) == 1:
            return self.requests(sources[0])
        each = [self.requests(source) for source in sources]
        missing = [r.unavailable for r in each if r.unavailable]
        counted = next((r.counted for r in each if r.counted is not None), None)
        return SourceRequests(
            source="+".join(sources),
            label=" + ".join(r.label for r in each),
            everything=tuple(sorted((s for r in each for s in r.everything), key=_when)),
            interval=tuple(sorted((s for r in each for s in r.interval), key=_when)),
            hold_start=min(r.hold_start for r in each),
            unavailable="; ".join(missing) if missing else None,
            counted=counted,
            parts=tuple(SourceCounts.of(r.source, r.everything) for r in each),
        )

    def requests(self, source: str) -> SourceRequests:
        """``source``'s requests of the hold up to the look's end."""
        if source == SAMPLER:
            return SourceRequests(
                SAMPLER, SAMPLER, self.samples, self.interval_samples, self.hold_start, None, None
            )
        counted = self.counted.get(source)
        label = counted.label if counted is not None else source
        failed = [
            reason
            for at, reason in (counted.errors if counted else ())
            if self.start <= at < self.end
        ]
        unavailable: str | None = None
        if failed:
            unavailable = f"the {source} evidence could not be read in the interval: " + "; ".join(
                failed[:3]
            )
        elif counted is None or counted.reads == 0:
            unavailable = f"the {source} evidence was never read"
        everything = tuple(
            s for s in (counted.samples if counted else ()) if s.timestamp < self.end
        )
        interval = tuple(s for s in everything if s.timestamp >= self.start)
        hold_start = min([self.hold_start, *(s.timestamp for s in everything[:1])])
        return SourceRequests(source, label, everything, interval, hold_start, unavailable, counted)


def alarm_requests(evidence: Evidence, sources: Sequence[str]) -> tuple[list[Sample], str]:
    """The canary requests the alarm rules watch, and their source: those of the sampler
    and the first counted source together (like the error rate), leaving out a source
    that could not be read; else the first further counted source that could."""
    counted = [source for source in sources if source != SAMPLER]
    chosen = [SAMPLER] * (SAMPLER in sources) + counted[:1]
    readable = [source for source in chosen if evidence.requests(source).unavailable is None]
    if not readable:
        readable = [s for s in counted[1:] if evidence.requests(s).unavailable is None][:1]
    if not readable:
        return [], "+".join(chosen)
    return canary_http(evidence.joined(readable).everything), "+".join(readable)

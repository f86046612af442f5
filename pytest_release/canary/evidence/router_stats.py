"""Router-side evidence: what HAProxy itself saw for each version, from its runtime API.

The :class:`RouterStatsPoller` reads ``show stat`` every ``interval`` seconds and turns the
per-server counter deltas into evidence for the judge:

* **counts**: every response a server gave between two reads (``hrsp_1xx`` .. ``hrsp_other``)
  plus every failed attempt on it (``econ`` connection errors, ``eresp`` response errors)
  is one request of that server's version (``stable`` / ``canary``, from the router's
  members); ``hrsp_5xx``, ``econ`` and ``eresp`` are its errors.  These are real counts,
  so "insufficient" means too few real requests.  The requests of one read are spread
  evenly over the time since the previous read (one :class:`Sample` each, no latency).
* **latency**: HAProxy 2.6 keeps no latency distribution (neither ``show stat`` nor its
  Prometheus exporter has histograms): ``rtime`` is the *average* response time of the
  server's last 1024 requests.  Each read keeps, per version, that average weighted by the
  requests of the read (:class:`RouterLatency`); the judge's router latency checks say so.

A slot reused by another endpoint, or counters that went down (HAProxy restarted), start
counting afresh from that read.  A failed read is kept as an error for the judge, which
then reports the router checks as insufficient with the reason, never as a pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pytest_release.canary.samples import Sample, Target

_RESPONSES = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
_FAILED = ("econ", "eresp")


@dataclass(frozen=True)
class ServerCounters:
    """One server row of ``show stat``: cumulative counters since HAProxy started."""

    server: str
    endpoint: str
    responses: int
    errors: int  # hrsp_5xx + econ + eresp
    failed_attempts: int  # econ + eresp (no response from the server)
    rtime_ms: float  # average response time of the last 1024 requests

    @property
    def requests(self) -> int:
        return self.responses + self.failed_attempts


@dataclass(frozen=True)
class RouterLatency:
    """HAProxy's average response time of one version at one read (see the module doc)."""

    timestamp: float  # the middle of the period the read counted
    target: Target
    mean_ms: float
    requests: int  # requests of this version counted by this read (the average's weight)


@dataclass(frozen=True)
class RouterEvidence:
    """Counted evidence for the judge: requests and errors per version (as samples without
    latency) and mean latencies; what the router poller measured up to a time, or what
    Prometheus counted (:mod:`.prometheus`)."""

    samples: tuple[Sample, ...]
    latencies: tuple[RouterLatency, ...]
    errors: tuple[tuple[float, str], ...] = ()  # (time, reason) of failed reads
    reads: int = 0
    source: str = "router"  # the judge.evidence name
    has_latency: bool = True  # False: no latency measured, the latency checks are left out
    label: str = "router (HAProxy counters)"  # how messages name it
    latency_note: str = (
        "HAProxy rtime: the average of each server's last 1024 requests; HAProxy keeps no "
        "percentiles"
    )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def parse_show_stat(text: str, backend: str) -> list[ServerCounters]:
    """The server rows of ``backend`` in a ``show stat`` CSV answer."""
    header: list[str] = []
    servers = []
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split(",")
            continue
        if not line.strip() or not header:
            continue
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        failed = sum(_int(row.get(name)) for name in _FAILED)
        servers.append(
            ServerCounters(
                server=row.get("svname", ""),
                endpoint=row.get("addr", ""),
                responses=sum(_int(row.get(name)) for name in _RESPONSES),
                errors=_int(row.get("hrsp_5xx")) + failed,
                failed_attempts=failed,
                rtime_ms=float(_int(row.get("rtime"))),
            )
        )
    if not header:
        raise ValueError(f"not a 'show stat' answer: {text[:300]!r}")
    return servers


def spread(
    target: Target, replica: str, start: float, end: float, requests: int, errors: int
) -> list[Sample]:
    """``requests`` samples evenly spread over ``(start, end]``, ``errors`` of them failed
    (spread evenly too: the counters do not say when within the read each one was)."""
    step = (end - start) / requests if requests else 0.0
    samples = []
    for i in range(requests):
        failed = (i + 1) * errors // requests != i * errors // requests
        samples.append(
            Sample(
                timestamp=start + (i + 1) * step,
                target=target,
                kind="http",
                ok=not failed,
                latency_ms=None,
                replica=replica,
                detail="router: HAProxy counted an error (5xx or failed attempt)" if failed else "",
            )
        )
    return samples


class RouterStatsPoller:
    """Reads the router's per-server counters in a background thread (see the module doc).

    ``read`` returns the ``show stat`` answer; ``groups`` maps endpoint -> ``stable`` /
    ``canary`` (the router's members now)."""

    def __init__(
        self,
        read: Callable[[], str],
        groups: Callable[[], Mapping[str, Target]],
        *,
        backend: str,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be longer than 0 s, got {interval!r}")
        self._read = read
        self._groups = groups
        self._backend = backend
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[tuple[str, str], tuple[float, ServerCounters]] = {}
        self._samples: list[Sample] = []
        self._latencies: list[RouterLatency] = []
        self._errors: list[tuple[float, str]] = []
        self._reads = 0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Take the baseline read now, then read every ``interval`` in the background."""
        self.poll()
        self._thread = threading.Thread(target=self._run, name="router-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    # -- reading -------------------------------------------------------------------------
    def poll(self) -> None:
        """One read: counter deltas since the previous read become samples."""
        with self._lock:
            now = self._clock()
            try:
                servers = parse_show_stat(self._read(), self._backend)
                groups = self._groups()
            except Exception as exc:  # the judge reports it; the hold goes on
                self._errors.append((now, f"{_clock(now)} UTC: {exc}"))
                return
            self._reads += 1
            weighted: dict[Target, list[float]] = {}
            period_start = now
            for server in servers:
                key = (server.server, server.endpoint)
                previous = self._last.get(key)
                self._last[key] = (now, server)
                target = groups.get(server.endpoint)
                if previous is None or target is None:
                    continue  # baseline read for this endpoint, or not a member
                since, before = previous
                requests = server.requests - before.requests
                errors = server.errors - before.errors
                if requests < 0 or errors < 0:
                    continue  # counters reset (HAProxy restarted): this read is the baseline
                errors = min(errors, requests)
                period_start = min(period_start, since)
                self._samples += spread(target, server.endpoint, since, now, requests, errors)
                if requests:
                    acc = weighted.setdefault(target, [0.0, 0.0])
                    acc[0] += server.rtime_ms * requests
                    acc[1] += requests
            # An average read stands for the middle of the period it counted.
            middle = (period_start + now) / 2.0
            for target, (total, count) in weighted.items():
                self._latencies.append(RouterLatency(middle, target, total / count, int(count)))

    def settle(self, until: float) -> None:
        """Read once more now, so the counts up to ``until`` (a past time) are in."""
        if self._clock() >= until:
            self.poll()

    def evidence(self, end: float | None = None) -> RouterEvidence:
        """Samples and latencies up to ``end`` (all when None)."""
        with self._lock:
            return RouterEvidence(
                samples=tuple(s for s in self._samples if end is None or s.timestamp < end),
                latencies=tuple(x for x in self._latencies if end is None or x.timestamp <= end),
                errors=tuple(self._errors),
                reads=self._reads,
            )


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(timestamp))


def member_groups(stable: Sequence[str], canary: Sequence[str]) -> dict[str, Target]:
    groups: dict[str, Target] = dict.fromkeys(stable, "stable")
    groups.update(dict.fromkeys(canary, "canary"))
    return groups

"""A canary hold: sampling from its start, judged interval by interval, ended once.

:class:`Hold` owns the sampler and the judge of one canary step.  The controller asks it
to judge each interval window (offsets from the start of the hold) when the window is
over; the hold waits for the window's end and for the requests still in flight, then
judges the window's samples (and the history, for the alarm rules), and keeps every
verdict.  :meth:`Hold.finish` stops sampling and judges the stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pytest_release.canary.judge import CanaryVerdict, CheckResult, Judge

if TYPE_CHECKING:
    from pytest_release.canary.evidence.alertmanager import AlertsRead
    from pytest_release.canary.evidence.source import AlertSource, CountedSource
    from pytest_release.canary.judge.canary_serving import UnservedCanary
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.sampler import Sampler
    from pytest_release.canary.samples import Sample
    from pytest_release.canary.settings import CanarySettings
    from pytest_release.canary.stats import IntervalStats


class HoldDisplay(Protocol):
    """Live progress of a hold (the terminal in a pytest session)."""

    def update(self, elapsed: float, canary: IntervalStats, stable: IntervalStats) -> None: ...

    def interval_done(self, verdict: CanaryVerdict) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class IntervalJudgement:
    """One judged window: the judge's verdict, failed Prometheus bounds, and the
    properties that go into the item's report."""

    verdict: CanaryVerdict
    metric_failures: tuple[str, ...]
    properties: tuple[tuple[str, str], ...]
    cannot_pass: str | None = None  # why the stage can no longer pass (stop early)

    @property
    def failed(self) -> bool:
        return self.verdict.verdict == "fail" or bool(self.metric_failures)

    def failure_message(self) -> str:
        parts = [self.verdict.failure_message()] if self.verdict.verdict == "fail" else []
        return "\n".join(parts + list(self.metric_failures))


@dataclass
class Hold:
    settings: CanarySettings
    hold_seconds: float
    planned_looks: int
    rollout: Rollout
    display: HoldDisplay | None = None
    clock: Callable[[], float] = time.time
    sampler: Sampler | None = None
    judge: Judge | None = None
    sources: dict[str, CountedSource] = field(default_factory=dict)  # by judge.evidence name
    alert_sources: dict[str, AlertSource] = field(default_factory=dict)  # judge.<name> set
    alerts: dict[str, list[AlertsRead]] = field(default_factory=dict)  # the asks, by source
    started_at: float | None = None
    verdicts: list[CanaryVerdict] = field(default_factory=list)
    stage_verdict: CanaryVerdict | None = None
    # The report with no ready canary replica and what taking the canary out of the router
    # did (judge/canary_serving.py), once per hold.
    unserved: tuple[UnservedCanary, str] | None = None

    @property
    def started(self) -> bool:
        return self.sampler is not None

    def start(self) -> None:
        from pytest_release.canary.evidence.source import (
            EvidenceContext,
            build_alerts,
            build_source,
        )
        from pytest_release.canary.judge.evidence import SAMPLER
        from pytest_release.canary.registry import registry
        from pytest_release.canary.sampler import Sampler

        platform = self.rollout.platform
        self.sampler = Sampler(
            self.settings.sampler,
            self.rollout.targets(),
            status=lambda: platform.status().replicas,
            health_path=self.settings.platform.health_path,
        )
        self.judge = Judge(self.settings.judge, planned_looks=max(1, self.planned_looks))
        # The counted sources (router, Prometheus, a plug-in's), as their plug-ins build
        # them; each takes its baseline before the sampler sends anything.
        context = EvidenceContext(self.rollout, self.settings, self.clock)
        for name in self.settings.judge.evidence:
            if name != SAMPLER:
                source = build_source(name, self.settings.judge.source_table(name), context)
                self.sources[name] = source
                source.start()
        # The alert sources whose table is set (Alertmanager): asked while a look waits.
        for name, plugin in registry().evidence.items():
            table = self.settings.judge.source_table(name)
            if plugin.kind == "alerts" and table is not None:
                self.alert_sources[name] = build_alerts(name, table, context)
                self.alerts[name] = []
        self.sampler.start()
        self.started_at = self.clock()

    def judge_window(self, window: tuple[float, float]) -> IntervalJudgement:
        """Wait until ``window`` (offsets in seconds from the start) is over, then judge it."""
        from pytest_release.canary.sampler import check_metrics
        from pytest_release.system.signals import raise_if_interrupted

        if not self.started:
            self.start()
        assert self.sampler is not None
        assert self.judge is not None
        assert self.started_at is not None
        start, end = self.started_at + window[0], self.started_at + window[1]
        asked = {name: len(reads) for name, reads in self.alerts.items()}
        next_ask = dict.fromkeys(self.alert_sources, self.clock())
        firing = False
        while (remaining := end - self.clock()) > 0:
            raise_if_interrupted()  # a SIGINT whose interrupt a finalizer swallowed
            if self._canary_stopped_serving(start):
                end = self.clock()  # judged at once: the canary is out of the router
                break
            for name, alerting in self.alert_sources.items():
                if self.clock() >= next_ask[name]:
                    self.alerts[name].append(alerting.ask())
                    next_ask[name] = self.clock() + alerting.interval
                    if self.alerts[name][-1].alerts:
                        end = self.clock()  # a matching alert fails the interval at once
                        firing = True
                        break
            if firing:
                break
            time.sleep(min(0.25, remaining))
            self._show_progress(start)
        # Requests started in the window count in it: wait for the ones still in flight.
        self.sampler.settle(end)
        for source in self.sources.values():
            source.settle(start, end)
        verdict = self.judge.judge_interval(
            self.sampler.samples(start, end),
            self.sampler.statuses(start, end),
            start,
            end,
            self.sampler.samples(None, end),
            look=len(self.verdicts) + 1,
            counted={name: source.evidence(end) for name, source in self.sources.items()},
            extra=self._alerts_check(asked, start, end) + self._serving_check(start, end),
        )
        self.verdicts.append(verdict)
        if self.display is not None:
            self.display.interval_done(verdict)
        properties = list(verdict.properties())
        failures: list[str] = []
        prometheus = self.settings.sampler.prometheus
        if prometheus is not None:
            failures, metric_properties = check_metrics(
                self.sampler.metrics(start, end), prometheus
            )
            properties += metric_properties
        properties += [("sampler.error", error) for error in self.sampler.errors()]
        remaining = max(0, self.planned_looks - len(self.verdicts))
        cannot_pass = self.judge.stage_can_still_pass(self.verdicts, remaining)
        if cannot_pass is not None and verdict.verdict != "fail":
            properties.append(("judge.stopped_early", cannot_pass))
        return IntervalJudgement(verdict, tuple(failures), tuple(properties), cannot_pass)

    def _alerts_check(self, asked: dict[str, int], start: float, end: float) -> list[CheckResult]:
        """One ``alerts`` check per alert source (the first plainly named, further ones
        ``<source>.alerts``) from the asks of the interval."""
        from pytest_release.canary.judge.alerts import alerts_check

        results = []
        for i, (name, alerting) in enumerate(self.alert_sources.items()):
            reads = self.alerts[name]
            if len(reads) == asked[name]:  # a short interval: ask once at its end
                reads.append(alerting.ask())
            check = "alerts" if i == 0 else f"{name}.alerts"
            results.append(alerts_check(reads[asked[name] :], start, end, name, check))
        return results

    def _canary_stopped_serving(self, since: float) -> bool:
        """The platform's newest report has canary replicas and none ready: take the canary
        out of the router now, before the interval ends (see judge/canary_serving.py).
        Only for the Kubernetes Service routers, which drop stable's traffic too (a local
        HAProxy health-checks each server and keeps serving stable)."""
        if self.unserved is not None or self.sampler is None:
            return False
        # A router whose members must serve while it names them (Traefik, Gateway API:
        # RouterCapabilities.idle_members = False) is the one that loses stable's traffic.
        router = getattr(self.rollout, "router", None)
        if router is None or router.capabilities.idle_members:
            return False
        from pytest_release.canary.judge.canary_serving import unserved_canary
        from pytest_release.errors import ReleaseError

        found = unserved_canary(self.sampler.statuses(since, None))
        if found is None:
            return False
        try:
            router = f"the router reads back {self.rollout.rollback_traffic()}"
        except ReleaseError as exc:  # the rollback after the failed interval tries again
            router = f"taking the canary out of the router failed: {exc}"
        self.unserved = (found, router)
        return True

    def _serving_check(self, start: float, end: float) -> list[CheckResult]:
        if self.unserved is None or not start <= self.unserved[0].at <= end:
            return []
        from pytest_release.canary.judge.canary_serving import canary_serving_result

        return [canary_serving_result(self.unserved[0], self.unserved[1], (start, end))]

    def _show_progress(self, window_start: float) -> None:
        if self.display is None or self.sampler is None or self.started_at is None:
            return
        from pytest_release.canary.stats import interval_stats

        samples = self.sampler.samples(window_start, None)
        self.display.update(
            self.clock() - self.started_at,
            interval_stats(samples, "canary"),
            interval_stats(samples, "stable"),
        )

    def stop(self) -> None:
        """Stop sampling and the display (idempotent)."""
        if self.sampler is not None:
            self.sampler.stop()
        for source in self.sources.values():
            source.stop()
        if self.display is not None:
            display, self.display = self.display, None
            display.close()

    def finish(self) -> CanaryVerdict:
        """Stop sampling and judge the stage (once)."""
        self.stop()
        if self.stage_verdict is None:
            judge = self.judge or Judge(self.settings.judge)
            self.stage_verdict = judge.judge_stage(self.verdicts)
        return self.stage_verdict

    def samples(self) -> list[Sample]:
        return self.sampler.samples() if self.sampler is not None else []

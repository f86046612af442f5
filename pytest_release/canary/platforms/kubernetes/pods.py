"""What the API server says about the pods of a release: status, container states, events.

A pod's own status says whether it runs, is ready and how often its containers restarted;
the evidence of *why* lies in the released container's state (``waiting``:
``CrashLoopBackOff``, ``ErrImageNeverPull``; ``lastState.terminated``: ``OOMKilled``,
``Error`` with the exit code) and in the warning events the kubelet records for the pod
(``BackOff``, ``Unhealthy`` probe failures, ``Failed``).  :func:`pod_status` reads the
first, :func:`warning_events` the second; both end up in
:attr:`~pytest_release.canary.samples.ReplicaStatus.events`, which the judge's restarts
check and the rollout's failure messages quote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_release.canary.platform import Group
from pytest_release.canary.platforms.kubernetes.client import (
    EVENTS,
    KubeApi,
    KubeApiError,
    conditions,
)
from pytest_release.canary.samples import ReplicaStatus

# Waiting reasons no retry of the kubelet fixes within a rollout: the wait for a rollout
# stops at once with the pod's evidence instead of running into rollout_timeout.
HOPELESS_WAITING = frozenset({"ErrImageNeverPull", "InvalidImageName"})
# CrashLoopBackOff after this many restarts: the release crashes at every start.
CRASH_LOOP_RESTARTS = 2
MAX_EVENTS = 5  # per pod: the release's own failures first, then the newest others
# The reasons a release causes (crashes, failed probes, failed starts); others (e.g. a
# node's DNS configuration) come after them.
RELEASE_REASONS = ("BackOff", "Failed", "Unhealthy", "OOMKilling", "ProbeWarning")
MAX_MESSAGE = 240


@dataclass(frozen=True)
class PodStatus:
    """One pod as the API server reports it (more than a ``ReplicaStatus`` carries)."""

    name: str
    version: Group
    image: str
    phase: str
    ready: bool
    restarts: int
    node: str
    ip: str
    waiting: str = ""  # reason (and message) the released container waits for
    terminated: str = ""  # why its last run ended: "OOMKilled (exit code 137)"
    events: tuple[str, ...] = field(default=())  # warning events, newest first

    def evidence(self) -> tuple[str, ...]:
        """Container state and warning events, one line each (empty for a healthy pod)."""
        lines = []
        if self.waiting:
            lines.append(f"waiting: {self.waiting}")
        if self.terminated:
            lines.append(f"last terminated: {self.terminated}")
        return (*lines, *self.events)

    def replica(self, now: float, port: int) -> ReplicaStatus:
        """This pod as the rollout and the judge see a replica (its endpoint the pod IP on
        the container port the sampler reaches)."""
        return ReplicaStatus(
            timestamp=now,
            name=self.name,
            version=self.version,
            image=self.image,
            running=self.phase == "Running",
            ready=self.ready,
            restarts=self.restarts,
            endpoint=f"{self.ip or '-'}:{port}",
            events=self.evidence(),
        )

    def crash_looping(self) -> str | None:
        """Why this pod will not become ready by waiting longer, or None."""
        reason = self.waiting.split(":", 1)[0]
        if reason in HOPELESS_WAITING:
            return reason
        if reason == "CrashLoopBackOff" and self.restarts >= CRASH_LOOP_RESTARTS:
            return f"CrashLoopBackOff after {self.restarts} restarts"
        return None

    def describe(self) -> str:
        text = (
            f"{self.name} ({self.version}, {self.image}): {self.phase}, "
            f"{'ready' if self.ready else 'not ready'}, {self.restarts} restart(s), "
            f"node {self.node or '(unscheduled)'}"
        )
        evidence = self.evidence()
        return f"{text} [{'; '.join(evidence)}]" if evidence else text


def _short(text: object) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def _terminated(state: Mapping[str, Any]) -> str:
    terminated = state.get("terminated") or {}
    if not terminated:
        return ""
    reason = str(terminated.get("reason") or "Terminated")
    text = f"{reason} (exit code {terminated.get('exitCode', '?')})"
    if terminated.get("message"):
        text += f": {_short(terminated['message'])}"
    return text


def pod_status(pod: Mapping[str, Any], version: Group, container: str | None) -> PodStatus:
    """``pod`` (an API object) as a :class:`PodStatus`; ``container`` is the released one
    (None: the first)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    name = container or (str(containers[0].get("name")) if containers else None)
    image = next((str(c.get("image", "")) for c in containers if c.get("name") == name), "")
    statuses = status.get("containerStatuses") or []
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    waiting = terminated = ""
    for s in statuses:
        if s.get("name") != name:
            continue
        state = s.get("state") or {}
        if state.get("waiting"):
            w = state["waiting"]
            waiting = str(w.get("reason") or "Waiting")
            if w.get("message"):
                waiting += f": {_short(w['message'])}"
        terminated = _terminated(state) or _terminated(s.get("lastState") or {})
    ready_condition = conditions(pod).get("Ready") or {}
    return PodStatus(
        name=str(pod["metadata"]["name"]),
        version=version,
        image=image,
        phase=str(status.get("phase") or "Unknown"),
        ready=ready_condition.get("status") == "True",
        restarts=restarts,
        node=str(spec.get("nodeName") or ""),
        ip=str(status.get("podIP") or ""),
        waiting=waiting,
        terminated=terminated,
    )


def _event_time(event: Mapping[str, Any]) -> str:
    series = event.get("series") or {}
    return str(
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or ""
    )


def _event_count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    return int(series.get("count") or event.get("count") or 1)


def format_event(event: Mapping[str, Any]) -> str:
    """``BackOff (x3): Back-off restarting failed container ...``"""
    count = _event_count(event)
    times = f" (x{count})" if count > 1 else ""
    return f"{event.get('reason') or 'Event'}{times}: {_short(event.get('message'))}"


def warning_events(api: KubeApi, namespace: str, pods: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Warning events of ``pods`` (names in ``namespace``): those of
    :data:`RELEASE_REASONS` first, newest first, at most :data:`MAX_EVENTS` per pod.
    Events the credentials may not list give none: they are evidence, not a condition of
    the rollout."""
    wanted = set(pods)
    if not wanted:
        return {}
    try:
        items = api.list(EVENTS, namespace, field_selector="involvedObject.kind=Pod,type=Warning")
    except KubeApiError:
        return {}
    found: dict[str, list[Mapping[str, Any]]] = {}
    for event in items:
        involved = event.get("involvedObject") or {}
        name = str(involved.get("name") or "")
        if name in wanted:
            found.setdefault(name, []).append(event)

    def order(event: Mapping[str, Any]) -> tuple[bool, str]:
        return (event.get("reason") in RELEASE_REASONS, _event_time(event))

    return {
        name: tuple(format_event(e) for e in sorted(events, key=order, reverse=True)[:MAX_EVENTS])
        for name, events in found.items()
    }


def with_events(
    pods: Sequence[PodStatus], events: Mapping[str, tuple[str, ...]]
) -> list[PodStatus]:
    return [replace(p, events=events.get(p.name, ())) for p in pods]

"""Alertmanager as a rollback trigger: a firing alert that matches the configured labels
during the hold fails the interval at once.

The hold asks Alertmanager's API (``GET /api/v2/alerts`` with ``filter`` matchers, active
and neither silenced nor inhibited) every ``interval`` seconds while it waits for an
interval to end; the first matching alert ends the interval early and the ``alerts`` check
fails, naming each alert, its labels and when it started.  An Alertmanager that cannot be
asked makes the check ``insufficient`` with the reason (never a pass).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.config.types import Duration, check_http_url


class AlertmanagerConfig(BaseModel):
    """``judge.alertmanager``: which alerts roll the canary back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Alertmanager base URL, e.g. http://127.0.0.1:9093"""
    labels: dict[str, str] = Field(default_factory=lambda: {"severity": "critical"})
    """Label values an alert must have to roll back (exact matches; default severity = critical)."""
    service: str | None = None
    """The service's own label value: alerts must also carry service_label = this (unset: any
    service)."""
    service_label: str = "service"
    """The label naming the service."""
    interval: Duration = 1.0
    """Seconds between asks while an interval runs."""
    timeout: Duration = 5.0
    """Seconds per request."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value, "http://127.0.0.1:9093")

    def matchers(self) -> dict[str, str]:
        wanted = dict(self.labels)
        if self.service is not None:
            wanted[self.service_label] = self.service
        return wanted


@dataclass(frozen=True)
class Alert:
    name: str
    labels: Mapping[str, str]
    starts_at: str  # as Alertmanager reports it (RFC 3339)

    def describe(self) -> str:
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name} {{{labels}}} firing since {self.starts_at}"


@dataclass(frozen=True)
class AlertsRead:
    """One ask: the matching firing alerts, or why Alertmanager could not be asked."""

    timestamp: float
    alerts: tuple[Alert, ...] = ()
    error: str | None = None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def firing_alerts(config: AlertmanagerConfig) -> AlertsRead:
    """The firing alerts that match ``config`` now."""
    import httpx

    now = time.time()
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("active", "true"),
        ("silenced", "false"),
        ("inhibited", "false"),
    ]
    params += [("filter", f'{k}="{_escape(v)}"') for k, v in sorted(config.matchers().items())]
    endpoint = f"{config.url}/api/v2/alerts"
    try:
        response = httpx.get(endpoint, params=params, timeout=config.timeout)
        response.raise_for_status()
        body = json.loads(response.text)
    except (httpx.HTTPError, ValueError) as exc:
        return AlertsRead(now, error=f"{endpoint}: {type(exc).__name__}: {exc}")
    if not isinstance(body, list):
        return AlertsRead(now, error=f"{endpoint}: not a list of alerts: {response.text[:200]!r}")
    wanted = config.matchers()
    alerts = []
    for item in body:
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        state = (item.get("status") or {}).get("state", "active")
        if state != "active" or any(labels.get(k) != v for k, v in wanted.items()):
            continue
        alerts.append(Alert(labels.get("alertname", "?"), labels, str(item.get("startsAt", "?"))))
    return AlertsRead(now, tuple(alerts))


@dataclass(frozen=True)
class AlertmanagerAlerts:
    """The ``alertmanager`` :class:`~pytest_release.canary.evidence.source.AlertSource`."""

    config: AlertmanagerConfig

    @property
    def interval(self) -> float:
        return self.config.interval

    def ask(self) -> AlertsRead:
        return firing_alerts(self.config)


def build(table: BaseModel | None, context: object) -> AlertmanagerAlerts:
    """The source of ``judge.alertmanager`` (``table``)."""
    assert isinstance(table, AlertmanagerConfig)
    return AlertmanagerAlerts(table)

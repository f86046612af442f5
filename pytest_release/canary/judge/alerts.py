"""``alerts``: no matching Alertmanager alert fired during the interval (the hold asks
Alertmanager while it waits, see :mod:`pytest_release.canary.evidence.alertmanager`)."""

from __future__ import annotations

import json

from pytest_release.canary.evidence.alertmanager import AlertsRead
from pytest_release.canary.judge.verdicts import CheckResult, format_window


def alerts_check(
    reads: list[AlertsRead],
    start: float,
    end: float,
    source: str = "alertmanager",
    name: str = "alerts",
) -> CheckResult:
    """The ``alerts`` check of the interval from the asks made of ``source`` in it."""
    window = format_window(start, end)
    firing = {a.describe(): a for r in reads for a in r.alerts}
    details = tuple(
        (f"{alert.name}.{key}", value)
        for alert in firing.values()
        for key, value in (("labels", json.dumps(dict(alert.labels))), ("since", alert.starts_at))
    )
    failed = [r.error for r in reads if r.error]
    if not firing and (not reads or len(failed) == len(reads)):
        why = failed[-1] if failed else "it was not asked"
        return CheckResult.insufficient(
            name,
            threshold=0.0,
            unit="alerts",
            window=(start, end),
            samples=0,
            message=f"{source}: could not tell whether an alert fired over {window}: {why}",
            source=source,
        )
    if firing:
        listed = "; ".join(firing)
        message = f"{len(firing)} matching alert(s) firing during the hold over {window}: {listed}"
    else:
        asks = f"{len(reads)} asks" + (f", {len(failed)} failed" if failed else "")
        message = f"no matching alert firing over {window} ({asks})"
    return CheckResult(
        name=name,
        verdict="fail" if firing else "pass",
        value=float(len(firing)),
        threshold=0.0,
        unit="alerts",
        window_start=start,
        window_end=end,
        samples=len(reads),
        message=f"{source}: {message}",
        details=details,
        source=source,
    )

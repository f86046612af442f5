"""How a test report says which gate it belongs to, and that its gate was closed: two
user properties, set where the item runs (worker or not) and read where reports are
written (the gate tracker, JUnit)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

GATE_PROPERTY = "gate"
CLOSED_PROPERTY = "gate_closed"


def closed_reason(failed_gate: str) -> str:
    return f"gate '{failed_gate}' failed"


def report_gate(report: pytest.TestReport, members: Mapping[str, str]) -> str | None:
    for name, value in report.user_properties:
        if name == GATE_PROPERTY:
            return str(value)
    return members.get(report.nodeid)


def was_closed(report: pytest.TestReport) -> bool:
    return any(name == CLOSED_PROPERTY for name, _ in report.user_properties)

"""A test report made ready to leave the process that ran the test: secrets masked,
the skip location of a closed gate moved to the gate's configuration, and the facts the
JUnit report and the GitHub annotations need (error type, crash line) kept beside a
longrepr that masking may flatten to text.  Runs where the report is made, so an xdist
worker sends the controller nothing to mask."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

import pytest

from pytest_release.gating.gate_node import skip_location
from pytest_release.ledger.stage_run import StageRun
from pytest_release.report.gate_properties import was_closed
from pytest_release.report.redact import Redactor


def prepare_report(
    report: Any,  # a pytest.TestReport, given attributes of this plugin (release_*)
    item: pytest.Item,
    call: pytest.CallInfo[None],
    run: StageRun,
    gate: str,
    redact: Redactor,
    safe_values: Set[str],
) -> None:
    if (
        report.passed
        and report.longrepr is None
        and not report.sections
        and not hasattr(report, "wasxfail")
    ):
        # Most reports: nothing to mask but custom properties.
        _mask_properties(report, redact, safe_values)
        return
    if call.excinfo is not None and report.failed:
        # The <failure type=...> of JUnit (the longrepr may be flattened below).
        report.release_error_type = call.excinfo.typename
    if report.skipped and isinstance(report.longrepr, tuple):
        # pytest places a skip where pytest.skip was raised, often in this plugin:
        # point at the gate's configuration (closed gates) or the item instead.
        where = skip_location(item, gate, run, report.longrepr[0], was_closed(report))
        if where is not None:
            report.longrepr = (*where, report.longrepr[2])
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = redact(report.wasxfail)
    crash = getattr(report.longrepr, "reprcrash", None)
    if report.failed and crash is not None:
        # Kept beside the (possibly redacted, flattened) longrepr: annotations point
        # at the failing line, not at the test's def line.
        report.release_crash = (run.relative(crash.path), crash.lineno)
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = report.longreprtext
        clean = redact(text)
        if clean != text:
            report.longrepr = clean
    elif isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        path, line, message = report.longrepr
        report.longrepr = (path, line, redact(str(message)))
    # Captured output and properties are printed (-rA, failures) and sent to the
    # controller: masked here, but a list is only rebuilt when a value changes.
    if report.sections:
        sections = [(title, redact(content)) for title, content in report.sections]
        if sections != report.sections:
            report.sections = sections
    _mask_properties(report, redact, safe_values)


def _mask_properties(report: pytest.TestReport, redact: Redactor, safe: Set[str]) -> None:
    if any(
        isinstance(v, str) and v not in safe and redact(v) != v for _, v in report.user_properties
    ):
        report.user_properties = [
            (k, redact(v) if isinstance(v, str) else v) for k, v in report.user_properties
        ]

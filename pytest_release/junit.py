"""JUnit XML for a stage: one ``<testsuite>`` per gate, xunit1 attributes (file, line).

Written by the process that sees every report (the controller under xdist), with
repo-relative paths, stage/release/gate properties, and every text redacted.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_release.gating import GATE_PROPERTY, report_gate, was_closed
from pytest_release.redact import Redactor
from pytest_release.stage import GateResult, StageRun

# XML 1.0 forbids most control characters; pytest's own junitxml escapes them the same way.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# xdist prefixes a worker's failure text with "[gw0] linux -- Python 3.11.7 /path".
_XDIST_HEADER = re.compile(r"\A\[gw\d+\] [^\n]* -- Python [^\n]*\n")


def _xml_text(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"#x{ord(m.group()):02X}", text)


@dataclass(slots=True)
class CaseRecord:
    """What JUnit needs of one item: compact (the XML is built once, at the end), so a
    passed test costs a few shared strings and numbers."""

    nodeid: str
    gate: str
    file: str
    line: int | None
    duration: float = 0.0
    outcome: str = "passed"  # passed | failure | error | skipped
    error_type: str = ""  # the exception's type, for <failure type=...>
    crash_line: int | None = None  # the failing line, when it is in ``file``
    message: str = ""
    text: str = ""
    properties: tuple[tuple[str, str], ...] = ()
    output: tuple[str, ...] = ()

    @property
    def classname(self) -> str:
        return _names(self.nodeid, self.gate)[0]

    @property
    def name(self) -> str:
        return _names(self.nodeid, self.gate)[1]


def _names(nodeid: str, gate: str) -> tuple[str, str]:
    """``(classname, name)``; a parameter id (``[...]``, which may hold ``::``) stays
    part of the name."""
    path, sep, tail = nodeid.partition("::")
    head, bracket, params = tail.partition("[")
    rest = head.split("::") if sep else []
    if rest:
        rest[-1] += bracket + params
    dotted = path.removesuffix(".py").replace("/", ".")
    parts = [dotted, *rest]
    return f"{gate}." + ".".join(parts[:-1]) if len(parts) > 1 else gate, parts[-1]


class CaseRecorder:
    """Turns test reports into one :class:`CaseRecord` per item."""

    def __init__(self, run: StageRun, members: dict[str, str], redact: Redactor) -> None:
        self.run = run
        self.members = members
        self.redact = redact
        self.cases: dict[str, CaseRecord] = {}
        self._files: dict[str, str] = {}  # report location -> repo-relative path

    def _file(self, fspath: str) -> str:
        found = self._files.get(fspath)
        if found is None:
            found = self._files[fspath] = self.run.relative(fspath)
        return found

    def record(self, report: pytest.TestReport, gate: str | None = None) -> CaseRecord | None:
        """Account ``report`` (of ``gate`` when the caller knows it)."""
        gate = gate or report_gate(report, self.members)
        if gate is None:
            return None
        case = self.cases.get(report.nodeid)
        if case is None:
            fspath, lineno, _ = report.location
            case = CaseRecord(
                nodeid=report.nodeid,
                gate=gate,
                file=self._file(fspath),
                line=None if lineno is None else lineno + 1,
            )
            self.cases[report.nodeid] = case
        case.duration += report.duration
        for key, value in report.user_properties:
            if key != GATE_PROPERTY and (key, str(value)) not in case.properties:
                case.properties += ((str(key), self.redact(str(value))),)
        if report.passed:
            return case
        if report.failed:
            kind = "failure" if report.when == "call" else "error"
            if case.outcome != "failure":
                case.outcome = kind
            case.error_type = case.error_type or getattr(report, "release_error_type", "")
            text = self.redact(_XDIST_HEADER.sub("", report.longreprtext, count=1))
            case.message = case.message or _first_line(text, report.when)
            crash = getattr(report, "release_crash", None)
            if crash and case.crash_line is None and crash[0] == case.file:
                case.crash_line = int(crash[1])
            case.text = f"{case.text}\n{text}".strip() if case.text else text
            case.output += tuple(
                self.redact(f"----- {title} -----\n{content}") for title, content in report.sections
            )
        elif report.skipped and case.outcome == "passed":
            case.outcome = "skipped"
            if was_closed(report):
                case.message = self.redact(_skip_reason(report))
            elif hasattr(report, "wasxfail"):
                case.message = self.redact(f"expected failure: {report.wasxfail}")
            else:
                case.message = self.redact(_skip_reason(report))
        return case


def _first_line(text: str, when: str) -> str:
    """The JUnit ``message``: the first ``E`` line of a traceback, else the first line
    (generated checks put their summary first)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("E "):
            return line[2:].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else f"failed during {when}"


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
        return reason.removeprefix("Skipped: ")
    return report.longreprtext


def write_junit(
    path: Path,
    run: StageRun,
    gates: Iterable[GateResult],
    cases: Iterable[CaseRecord],
    redact: Redactor,
    stage_failure: str | None = None,
) -> None:
    cases = list(cases)
    root = ET.Element("testsuites", name=f"pytest-release {run.stage}")
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    host = socket.gethostname()
    for result in gates:
        members = [c for c in cases if c.gate == result.gate]
        failures = sum(c.outcome == "failure" for c in members)
        errors = sum(c.outcome == "error" for c in members)
        skipped = sum(c.outcome == "skipped" for c in members)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=result.gate,
            tests=str(len(members)),
            failures=str(failures),
            errors=str(errors),
            skipped=str(skipped),
            time=f"{result.duration:.3f}",
            timestamp=timestamp,
            hostname=host,
        )
        props = ET.SubElement(suite, "properties")
        suite_properties = [
            ("stage", run.stage),
            ("release_id", run.release_id),
            ("gate", result.gate),
            ("gate_status", result.status),
        ]
        if run.image:
            suite_properties.append(("image", run.image))
        for key, value in suite_properties:
            ET.SubElement(props, "property", name=key, value=_xml_text(redact(value)))
        for case in members:
            _add_case(suite, case, redact)
    if stage_failure:
        suite = ET.SubElement(
            root,
            "testsuite",
            name="stage",
            tests="1",
            failures="1",
            errors="0",
            skipped="0",
            time="0",
            timestamp=timestamp,
            hostname=host,
        )
        element = ET.SubElement(
            suite, "testcase", classname=f"stage.{run.stage}", name="stage", time="0"
        )
        failure = ET.SubElement(
            element, "failure", type="stage", message=_xml_text(redact(stage_failure))
        )
        failure.text = _xml_text(redact(stage_failure))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _add_case(suite: ET.Element, case: CaseRecord, redact: Redactor) -> None:
    classname, name = _names(redact(case.nodeid), case.gate)
    attrs = {
        "classname": _xml_text(classname),
        "name": _xml_text(name),
        "file": _xml_text(case.file),
        "time": f"{case.duration:.3f}",
    }
    if case.line is not None:
        attrs["line"] = str(case.line)
    element = ET.SubElement(suite, "testcase", attrs)
    if case.properties:
        props = ET.SubElement(element, "properties")
        for key, value in case.properties:
            ET.SubElement(props, "property", name=_xml_text(key), value=_xml_text(value))
    if case.outcome in ("failure", "error"):
        child = ET.SubElement(
            element,
            case.outcome,
            type=_xml_text(case.error_type or case.outcome),
            message=_xml_text(case.message),
        )
        child.text = _xml_text(case.text)
        if case.output:
            out = ET.SubElement(element, "system-out")
            out.text = _xml_text("\n".join(case.output))
    elif case.outcome == "skipped":
        ET.SubElement(element, "skipped", type="pytest.skip", message=_xml_text(case.message))


def not_run_case(run: StageRun, nodeid: str, gate: str, result: str) -> CaseRecord:
    """A selected item that never reported an outcome (the stage ended first): listed as
    skipped, so no reader counts it as passed."""
    return CaseRecord(
        nodeid=nodeid,
        gate=gate,
        file=run.relative(nodeid.split("::", 1)[0]),
        line=None,
        outcome="skipped",
        message=f"not run: the stage ended ({result}) before this item reported an outcome",
    )

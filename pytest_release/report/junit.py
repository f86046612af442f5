"""JUnit XML for a stage: one ``<testsuite>`` per gate, xunit1 attributes (file, line).

Written by the process that sees every report (the controller under xdist), with
repo-relative paths, stage/release/gate properties, and every text redacted.  Elements
and attributes are those of the Jenkins JUnit schema (xunit-plugin's junit-10.xsd), but
for ``<properties>`` inside a ``<testcase>`` (as pytest's xunit1 writes them; the
judged canary intervals carry their evidence there); no property name repeats in a report.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_release.ledger.stage_run import GateResult, StageRun
from pytest_release.report.gate_properties import GATE_PROPERTY, report_gate, was_closed
from pytest_release.report.junit_spool import CaseCounts, CaseSpool
from pytest_release.report.redact import Redactor

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
    dotted = path.removesuffix(".py").replace("/", ".")
    if not sep:
        return gate, dotted
    head, bracket, params = tail.partition("[")
    scope, inner, last = head.rpartition("::")
    if inner:
        return f"{gate}.{dotted}.{scope.replace('::', '.')}", last + bracket + params
    return f"{gate}.{dotted}", last + bracket + params


class CaseRecorder:
    """Turns test reports into one :class:`CaseRecord` per item.

    With a ``spool``, an item's record lives only while the item runs: when it finishes
    (its teardown report), a case that did not fail goes to the spool as XML and is
    dropped; a failing one is also kept in :attr:`failed` (GitHub output lists them)."""

    def __init__(
        self,
        run: StageRun,
        members: dict[str, str],
        redact: Redactor,
        spool: CaseSpool | None = None,
    ) -> None:
        self.run = run
        self.members = members
        self.redact = redact
        self.spool = spool
        self.cases: dict[str, CaseRecord] = {}  # items still running (all without a spool)
        self.failed: list[CaseRecord] = []  # finished failing cases (with a spool)
        self._files: dict[str, str] = {}  # report location -> repo-relative path
        self._attrs = _AttrCache()  # the escaped file and class names, once each

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
        nodeid = report.nodeid
        case = self.cases.get(nodeid)
        if case is None:
            fspath, lineno, _ = report.location
            line = None if lineno is None else lineno + 1
            case = CaseRecord(nodeid, gate, self._file(fspath), line)
            self.cases[nodeid] = case
        case.duration += report.duration
        if report.user_properties or not report.passed:  # else nothing to add (most reports)
            self._add(case, report)
        if self.spool is not None and report.when != "setup" and report.when != "call":
            del self.cases[nodeid]
            if case.outcome == "failure" or case.outcome == "error":
                # Kept for the GitHub annotations and step summary as well; the report
                # takes it from the spool, so its suite keeps the order cases finished in.
                self.failed.append(case)
            xml = _xml_text(_case_xml(case, self.redact, False, self._attrs))
            self.spool.add(case.gate, case.outcome, xml)
        return case

    def reported(self) -> list[CaseRecord]:
        """Every case held in memory: finished failing ones, then those still open."""
        return [*self.failed, *self.cases.values()]

    def open_cases(self) -> list[CaseRecord]:
        """The cases not in the spool: all of them without one, else those still open."""
        return list(self.cases.values())

    def _add(self, case: CaseRecord, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key != GATE_PROPERTY and (key, str(value)) not in case.properties:
                case.properties += ((str(key), self.redact(str(value))),)
        if report.passed:
            return
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


_TEXT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
# In attribute values, line breaks and tabs as character references, so a parser gives
# them back (attribute values are normalised).
_ATTR_ESCAPES = (*_TEXT_ESCAPES, ('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;"))


def _escape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for char, reference in escapes:
        if char in text:
            text = text.replace(char, reference)
    return text


def _attr(text: str) -> str:
    return _escape(text, _ATTR_ESCAPES)


def _cdata(text: str) -> str:
    return _escape(text, _TEXT_ESCAPES)


def _open(tag: str, attrs: Iterable[tuple[str, str]]) -> str:
    """A start tag with (already escaped) attributes."""
    return f"<{tag}" + "".join(f' {key}="{value}"' for key, value in attrs) + ">"


def _element(tag: str, attrs: Iterable[tuple[str, str]], text: str | None = None) -> str:
    """A whole element with (already escaped) attributes; ``text`` is escaped here."""
    head = "".join(f' {key}="{value}"' for key, value in attrs)
    if text is None:
        return f"<{tag}{head} />"
    return f"<{tag}{head}>{_cdata(text)}</{tag}>"


def write_junit(
    path: Path,
    run: StageRun,
    gates: Iterable[GateResult],
    cases: Iterable[CaseRecord],
    redact: Redactor,
    stage_failure: str | None = None,
    spool: CaseSpool | None = None,
) -> None:
    """Write the report once, at the end, as text: building an ElementTree of every
    case and serialising it costs several times what the tests of a fast suite cost.
    Each gate's suite holds its spooled cases (:mod:`.junit_spool`), then ``cases``."""
    cases = list(cases)
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    host = _attr(socket.gethostname())
    # Node ids were masked at collection; a secret that became known since (added to
    # the redactor during the run) is searched for once over all of them, not per case.
    mask_ids = redact.finds("\n".join(c.nodeid for c in cases))
    late = spool is not None and spool.late_secrets(redact)
    # Spooled lines are XML already: a late secret is looked for as XML writes it.
    escaped = (
        redact.with_values(form for value in redact.values for form in xml_forms(value))
        if late
        else redact
    )
    by_gate: dict[str, list[CaseRecord]] = {}
    for case in cases:
        by_gate.setdefault(case.gate, []).append(case)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        # Characters XML forbids cannot be in the markup written here, only in values: a
        # pass over each piece makes them legal (escaping neither adds nor removes any).
        def write(*parts: str) -> None:
            out.write(_xml_text("".join(parts)))

        write(
            "<?xml version='1.0' encoding='utf-8'?>\n",
            f'<testsuites name="{_attr(f"pytest-release {run.stage}")}">',
        )
        # Readers that fold every suite into one (xunitparser asserts that no property
        # name repeats) need each property name once per report: the stage's own
        # properties go into the first suite, each gate's status is named after the gate.
        stage_properties = [("stage", run.stage), ("release_id", run.release_id)]
        if run.image:
            stage_properties.append(("image", run.image))
        for result in gates:
            members = by_gate.get(result.gate, [])
            counts = CaseCounts()
            if spool is not None and result.gate in spool.counts:
                counts = replace(spool.counts[result.gate])
            for case in members:
                counts.add(case.outcome)
            suite_attrs = [
                ("name", _attr(result.gate)),
                ("tests", str(counts.tests)),
                ("failures", str(counts.failure)),
                ("errors", str(counts.error)),
                ("skipped", str(counts.skipped)),
                ("time", f"{result.duration:.3f}"),
                ("timestamp", timestamp),
                ("hostname", host),
            ]
            suite_properties = [*stage_properties, (f"gate.{result.gate}.status", result.status)]
            stage_properties = []
            write(_open("testsuite", suite_attrs), *_properties(suite_properties, redact))
            if spool is not None:
                for line in spool.lines(result.gate):
                    out.write(escaped(line) if late and escaped.finds(line) else line)
            write(*(_case_xml(case, redact, mask_ids) for case in members), "</testsuite>")
        if stage_failure:
            message = _attr(redact(stage_failure))
            write(
                _open(
                    "testsuite",
                    [
                        ("name", "stage"),
                        ("tests", "1"),
                        ("failures", "1"),
                        ("errors", "0"),
                        ("skipped", "0"),
                        ("time", "0"),
                        ("timestamp", timestamp),
                        ("hostname", host),
                    ],
                ),
                *_properties(stage_properties, redact),
                f'<testcase classname="{_attr(f"stage.{run.stage}")}" name="stage" time="0">',
                _element(
                    "failure", [("type", "stage"), ("message", message)], redact(stage_failure)
                ),
                "</testcase></testsuite>",
            )
        write("</testsuites>")


def xml_forms(value: str) -> set[str]:
    """``value`` as it appears in this report's attributes and text."""
    return {_attr(value), _cdata(value)} - {value}


def _properties(properties: list[tuple[str, str]], redact: Redactor) -> list[str]:
    if not properties:
        return []
    return [
        "<properties>",
        *(
            _element("property", [("name", _attr(key)), ("value", _attr(redact(value)))])
            for key, value in properties
        ),
        "</properties>",
    ]


def java_frame(file: str, line: int | None) -> str | None:
    """A Java stack frame naming ``file:line``, for readers that take a failure's location
    only from the stack trace in its text (dorny/test-reporter: ``at PKG.Class(Name:LINE)``,
    the file found among the repository's files by its name and the package as its
    directories).  None where such a reader cannot map it: no line, a file at the top
    of the repository, or a directory a package name cannot spell (a dot in it, or not
    starting with a lower-case letter or ``_``, which such readers take for a class)."""
    directory, _, name = file.rpartition("/")
    parts = directory.split("/")
    if line is None or not directory or any(not p or "." in p or p[0] <= "Z" for p in parts):
        return None
    if not name or any(c in name for c in "()\n\r"):
        return None
    return f"    at {'.'.join(parts)}.<test>({name}:{line})"


class _AttrCache(dict[str, str]):
    """Escaped attribute values that repeat from case to case (a file, a class), each
    escaped once per stage instead of once per case."""

    def __missing__(self, text: str) -> str:
        escaped = self[text] = _attr(text)
        return escaped


def _case_xml(
    case: CaseRecord, redact: Redactor, mask_ids: bool, shared: dict[str, str] | None = None
) -> str:
    """One ``<testcase>``; ``shared`` (an :class:`_AttrCache`) escapes the values that
    repeat between cases only once."""
    classname, name = _names(redact(case.nodeid) if mask_ids else case.nodeid, case.gate)
    head = (
        f'<testcase classname="{shared[classname] if shared is not None else _attr(classname)}"'
        f' name="{_attr(name)}"'
        f' file="{shared[case.file] if shared is not None else _attr(case.file)}"'
        f' time="{case.duration:.3f}"'
    )
    if case.line is not None:
        head += f' line="{case.line}"'
    children: list[str] = []
    if case.properties:
        children.append("<properties>")
        children += (
            _element("property", [("name", _attr(key)), ("value", _attr(value))])
            for key, value in case.properties
        )
        children.append("</properties>")
    if case.outcome in ("failure", "error"):
        frame = java_frame(case.file, case.crash_line or case.line)
        children.append(
            _element(
                case.outcome,
                [
                    ("type", _attr(case.error_type or case.outcome)),
                    ("message", _attr(case.message)),
                ],
                f"{case.text}\n{frame}" if frame else case.text,
            )
        )
        if case.output:
            children.append(_element("system-out", [], "\n".join(case.output)))
    elif case.outcome == "skipped":
        children.append(
            _element("skipped", [("type", "pytest.skip"), ("message", _attr(case.message))])
        )
    if not children:
        return head + " />"
    return head + ">" + "".join(children) + "</testcase>"


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

"""The one JUnit reader of the test suite: a report's test cases with their outcome,
message, properties and captured output, so a test asserts on what the report says
instead of walking the XML itself."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# The child elements that make a test case not passed; a case carrying several (a failed
# call and an error in teardown) takes the last one's, as CI readers do.
NOT_PASSED = ("failure", "error", "skipped")


@dataclass(frozen=True)
class Case:
    """One ``<testcase>``: ``outcome`` is passed, failure, error or skipped; ``message``,
    ``error_type`` and ``text`` are that child's ``message`` and ``type`` attributes and
    its body."""

    name: str
    classname: str
    file: str | None
    line: str | None
    outcome: str
    message: str
    error_type: str
    text: str
    # every <property> in order (a name may repeat, e.g. e2e's attachments)
    property_pairs: tuple[tuple[str, str], ...]
    system_out: str
    element: ET.Element = field(repr=False, compare=False)

    @property
    def details(self) -> str:
        """The message and the body together (what a reader shows for a failure)."""
        return self.message + self.text

    def failure(self) -> str:
        """The failure's message and body; the case must have failed."""
        assert self.outcome == "failure", f"{self.name} did not fail ({self.outcome})"
        return self.details

    @property
    def properties(self) -> dict[str, str]:
        """The properties by name (a repeated name keeps its last value)."""
        return dict(self.property_pairs)

    def values(self, name: str) -> list[str]:
        """Every value of the property ``name``, in order."""
        return [value for key, value in self.property_pairs if key == name]


def report_xml(path: Path) -> ET.Element:
    """The report's root element (``<testsuites>``), for tests of its structure."""
    return ET.parse(path).getroot()


def read_case(element: ET.Element) -> Case:
    outcome, message, error_type, text = "passed", "", "", ""
    for child in element:
        if child.tag in NOT_PASSED:
            outcome, text = child.tag, child.text or ""
            message, error_type = child.get("message", ""), child.get("type", "")
    return Case(
        name=element.get("name", ""),
        classname=element.get("classname", ""),
        file=element.get("file"),
        line=element.get("line"),
        outcome=outcome,
        message=message,
        error_type=error_type,
        text=text,
        property_pairs=tuple(
            (p.get("name", ""), p.get("value", "")) for p in element.iter("property")
        ),
        system_out="".join(out.text or "" for out in element.iter("system-out")),
        element=element,
    )


def read_cases(path: Path) -> list[Case]:
    """The report's test cases in the order it lists them."""
    return [read_case(element) for element in report_xml(path).iter("testcase")]


def cases_by_name(path: Path) -> dict[str, Case]:
    """The report's test cases by name (names must not repeat within the report)."""
    found: dict[str, Case] = {}
    for case in read_cases(path):
        assert case.name not in found, f"{case.name!r} twice in {path}"
        found[case.name] = case
    return found


def stage_report(root: Path, stage: str) -> Path:
    """Where the stage ``stage`` run in ``root`` writes its report by default."""
    return root / "reports" / f"{stage}.xml"

"""The JUnit writer, called directly: the XML parses, and every value (quotes, markup,
line breaks, tabs, control characters, secrets) comes back as a reader would show it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_release.config.plan import build_plan
from pytest_release.config.release import load_release_config
from pytest_release.gates import GateKinds
from pytest_release.ledger.stage_run import GateResult, StageRun
from pytest_release.report.junit import CaseRecord, java_frame, write_junit
from pytest_release.report.redact import Redactor
from tests.support.junit import read_case, read_cases

SECRET = "s3cr3t-token-value-1234"
TRICKY = "a \"quoted\" <tag> & 'apostrophe'\nsecond line\ttab\r end \x01 ünïcödé"


def _run(tmp_path: Path, image: str | None = "registry.local/shop:1.2") -> StageRun:
    config = load_release_config({}, "test", GateKinds({}))
    return StageRun(
        stage="uat",
        release_id="r-1",
        image=image,
        config=config,
        plan=build_plan(config, "uat"),
        rootdir=tmp_path,
        reports_dir=tmp_path / "reports",
        ledger_path=tmp_path / "ledger.json",
        override_requires=None,
    )


def _result(gate: str, status: str = "passed") -> GateResult:
    return GateResult(gate, status, 1, 1, 1, 0, 1.5, "")  # type: ignore[arg-type]


def test_values_round_trip_through_the_xml(tmp_path: Path) -> None:
    cases = [
        CaseRecord("tests/test_a.py::test_ok", "unit", "tests/test_a.py", 3, duration=0.25),
        CaseRecord(
            "tests/test_a.py::TestX::test_bad[a::b]",
            "unit",
            "tests/test_a.py",
            9,
            outcome="failure",
            error_type="AssertionError",
            message=TRICKY,
            text=f"E  assert {TRICKY}",
            properties=(("url", "http://127.0.0.1/?q=1&r=2"), ("note", TRICKY)),
            output=("captured <out>", "more & more"),
        ),
        CaseRecord(
            "tests/test_a.py::test_skip",
            "unit",
            "tests/test_a.py",
            None,
            outcome="skipped",
            message='needs "docker" & <network>',
        ),
        CaseRecord("tests/test_b.py::test_err", "unit", "tests/test_b.py", 1, outcome="error"),
    ]
    path = tmp_path / "reports" / "uat.xml"
    write_junit(path, _run(tmp_path), [_result("unit", "failed")], cases, Redactor())
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>\n")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert root.get("name") == "pytest-release uat"
    (suite,) = root.findall("testsuite")
    assert suite.attrib | {"timestamp": "", "hostname": ""} == {
        "name": "unit",
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "1.500",
        "timestamp": "",
        "hostname": "",
    }
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props == {
        "stage": "uat",
        "release_id": "r-1",
        "image": "registry.local/shop:1.2",
        "gate.unit.status": "failed",
    }
    ok, bad, skip, err = (read_case(case) for case in suite.findall("testcase"))
    assert ok.element.attrib == {
        "classname": "unit.tests.test_a",
        "name": "test_ok",
        "file": "tests/test_a.py",
        "time": "0.250",
        "line": "3",
    }
    assert list(ok.element) == []
    # Control characters are not legal XML: written as pytest's junitxml writes them.
    legal = TRICKY.replace("\x01", "#x01")
    assert bad.classname == "unit.tests.test_a.TestX"
    assert bad.name == "test_bad[a::b]"
    assert (bad.outcome, bad.error_type) == ("failure", "AssertionError")
    assert bad.message == legal  # \n, \t, \r survive attribute normalisation
    frame = "    at tests.<test>(test_a.py:9)"  # for dorny/test-reporter
    assert bad.text == f"E  assert {legal}\n{frame}".replace("\r", "\n")  # CR -> LF
    assert bad.property_pairs == (("url", "http://127.0.0.1/?q=1&r=2"), ("note", legal))
    assert bad.system_out == "captured <out>\nmore & more"
    assert (skip.outcome, skip.message) == ("skipped", 'needs "docker" & <network>')
    assert skip.line is None
    assert (err.outcome, err.error_type) == ("error", "error")


def test_secrets_known_only_at_the_end_are_masked_in_node_ids_and_the_stage_failure(
    tmp_path: Path,
) -> None:
    redact = Redactor().with_values([SECRET])
    cases = [
        CaseRecord(f"tests/test_a.py::test_token[{SECRET}]", "unit", "tests/test_a.py", 1),
        CaseRecord("tests/test_a.py::test_plain", "unit", "tests/test_a.py", 5),
    ]
    path = tmp_path / "uat.xml"
    write_junit(
        path,
        _run(tmp_path, image=None),
        [_result("unit")],
        cases,
        redact,
        stage_failure=f"rollback failed: token {SECRET} refused",
    )
    text = path.read_text(encoding="utf-8")
    assert SECRET not in text
    root = ET.parse(path).getroot()
    unit, stage = root.findall("testsuite")
    names = [case.get("name") for case in unit.findall("testcase")]
    assert names == ["test_token[***]", "test_plain"]
    assert "image" not in {p.get("name") for p in unit.findall("properties/property")}
    failure = stage.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "rollback failed: token *** refused"
    assert stage.get("failures") == "1"


# -- the readers of the report (issue 26, defect 6) ----------------------------------------
def _report(tmp_path: Path) -> Path:
    """A report with a failed, an errored, a skipped and a passed test in two gates, and
    the stage's own failure suite."""
    cases = [
        CaseRecord(
            "tests/unit/test_math.py::test_bad",
            "unit",
            "tests/unit/test_math.py",
            6,
            outcome="failure",
            error_type="AssertionError",
            crash_line=8,
            message="assert 1 == 2",
            text="E   assert 1 == 2\n\ntests/unit/test_math.py:8: AssertionError",
            properties=(("endpoint", "/orders"),),
        ),
        CaseRecord("tests/unit/test_math.py::test_ok", "unit", "tests/unit/test_math.py", 2),
        CaseRecord(
            "tests/integration/test_flow.py::test_db",
            "integration",
            "tests/integration/test_flow.py",
            3,
            outcome="error",
            message="RuntimeError: no database",
            text="E   RuntimeError: no database",
        ),
        CaseRecord(
            "tests/integration/test_flow.py::test_later",
            "integration",
            "tests/integration/test_flow.py",
            9,
            outcome="skipped",
            message="later",
        ),
    ]
    path = tmp_path / "reports" / "uat.xml"
    gates = [_result("unit", "failed"), _result("integration", "failed")]
    write_junit(path, _run(tmp_path), gates, cases, Redactor(), stage_failure="gate(s) failed")
    return path


def test_xunitparser_reads_the_report(tmp_path: Path) -> None:
    """xunitparser folds every suite into one and asserts that no property name repeats;
    a property per suite with the same name (stage, release_id, ...) crashed it."""
    import xunitparser

    with _report(tmp_path).open("rb") as handle:
        suite, result = xunitparser.parse(handle)
    assert result.testsRun == 5  # the four tests and the stage's failure
    assert (len(result.failures), len(result.errors), len(result.skipped)) == (2, 1, 1)
    assert suite.properties == {
        "stage": "uat",
        "release_id": "r-1",
        "image": "registry.local/shop:1.2",
        "gate.unit.status": "failed",
        "gate.integration.status": "failed",
    }


def test_junitparser_reads_the_report(tmp_path: Path) -> None:
    from junitparser import Error, Failure, JUnitXml, Skipped

    xml = JUnitXml.fromfile(str(_report(tmp_path)))
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == ["unit", "integration", "stage"]
    kinds = {
        case.name: [
            type(r).__name__ for r in case.result if isinstance(r, Failure | Error | Skipped)
        ]
        for suite in xml
        for case in suite
    }
    assert kinds == {
        "test_bad": ["Failure"],
        "test_ok": [],
        "test_db": ["Error"],
        "test_later": ["Skipped"],
        "stage": ["Failure"],
    }


# dorny/test-reporter (src/parsers/java-junit/java-junit-parser.ts, its Python-xunit reader
# is the same class; read at commit 29672c5) ignores the file and line attributes: it finds
# a failure's location in the failure text, in a Java stack frame `at PKG.Class(Name:LINE)`,
# taking the first frame whose file name is a tracked file and whose package (the dotted
# parts before the first one starting with a character up to 'Z') are that file's last
# directories.  A model of that lookup (the action itself cannot run here):
_DORNY_FRAME = re.compile(r"^\s*at (\S+\/\S*\/)?(.*)\((.*):(\d+)\)$")


def _dorny_location(details: str, tracked: list[str]) -> tuple[str, int] | None:
    for text_line in re.split(r"\r?\n", details):
        match = _DORNY_FRAME.match(text_line)
        if not match:
            continue
        trace_path, file_name, line = match.group(2), match.group(3), int(match.group(4))
        package = trace_path.split(".")
        cut = next((i for i, part in enumerate(package) if part and part[0] <= "Z"), None)
        package = package[:cut] if cut is not None else package
        if not package:
            continue
        for path in tracked:
            directories = path.rpartition("/")[0].split("/")
            tail = directories[len(directories) - len(package) :]
            fits = len(package) <= len(directories) and tail == package
            if path.rpartition("/")[2] == file_name and fits:
                return path, line
    return None


def test_dorny_test_reporter_finds_the_failing_line(tmp_path: Path) -> None:
    tracked = ["tests/unit/test_math.py", "tests/integration/test_flow.py", "other/test_math.py"]
    found = {
        case.name: _dorny_location(case.text, tracked)
        for case in read_cases(_report(tmp_path))
        if case.outcome in ("failure", "error")
    }
    assert found == {
        "test_bad": ("tests/unit/test_math.py", 8),  # the failing line, not the def line
        "test_db": ("tests/integration/test_flow.py", 3),
        "stage": None,  # the stage's own failure has no file
    }


@pytest.mark.parametrize(
    ("file", "line", "frame"),
    [
        ("tests/unit/test_a.py", 4, "    at tests.unit.<test>(test_a.py:4)"),
        ("test_top.py", 4, None),  # no directory: no package to match
        ("tests/v1.2/test_a.py", 4, None),  # a dot would split the package
        ("Tests/test_a.py", 4, None),  # a capital is read as the class
        ("tests/test_a.py", None, None),
    ],
)
def test_java_frame_only_where_the_reader_can_map_it(
    file: str, line: int | None, frame: str | None
) -> None:
    assert java_frame(file, line) == frame
    if frame is not None:
        assert _dorny_location(frame, [file]) == (file, line)


# The Jenkins JUnit schema (jenkinsci/xunit-plugin, types/model/xsd/junit-10.xsd): the
# elements, their attributes and their children it allows.
JENKINS_JUNIT = {
    "testsuites": ({"name", "time", "tests", "failures", "disabled", "errors"}, {"testsuite"}),
    "testsuite": (
        {
            "name", "tests", "failures", "errors", "time", "disabled", "skipped", "skips",
            "timestamp", "hostname", "id", "package", "assertions", "file", "skip", "log",
            "url",
        },
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), {"property"}),
    "property": ({"name", "value"}, set()),
    "testcase": (
        {
            "name", "assertions", "time", "timestamp", "classname", "status", "class", "file",
            "line", "log", "group", "url",
        },
        {"skipped", "error", "failure", "rerunFailure", "rerunError", "system-out",
         "system-err"},
    ),
    "failure": ({"type", "message"}, set()),
    "error": ({"type", "message"}, set()),
    "skipped": ({"type", "message"}, set()),
    "system-out": (set(), set()),
    "system-err": (set(), set()),
}  # fmt: skip
REQUIRED = {"testsuite": {"tests"}, "testcase": {"name"}, "property": {"name", "value"}}


def test_the_report_follows_the_jenkins_junit_schema(tmp_path: Path) -> None:
    """Every element, attribute and nesting is one junit-10.xsd allows, but for
    <properties> inside <testcase> (pytest's xunit1 writes them too; Jenkins' JUnit
    plugin reads them; the canary's verdicts carry their evidence there)."""
    root = ET.parse(_report(tmp_path)).getroot()
    assert root.tag == "testsuites"
    outside = []
    for parent in root.iter():
        attributes, children = JENKINS_JUNIT[parent.tag]
        assert set(parent.attrib) <= attributes, (parent.tag, parent.attrib)
        assert REQUIRED.get(parent.tag, set()) <= set(parent.attrib), parent.tag
        for child in parent:
            if child.tag not in children:
                outside.append(f"{parent.tag}/{child.tag}")
    assert outside == ["testcase/properties"]

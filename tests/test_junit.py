"""The JUnit writer, called directly: the XML parses, and every value (quotes, markup,
line breaks, tabs, control characters, secrets) comes back as a reader would show it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from pytest_release.config import load_release_config
from pytest_release.gates import GateKinds
from pytest_release.junit import CaseRecord, write_junit
from pytest_release.plan import build_plan
from pytest_release.redact import Redactor
from pytest_release.stage import GateResult, StageRun

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
        "gate": "unit",
        "gate_status": "failed",
        "image": "registry.local/shop:1.2",
    }
    ok, bad, skip, err = suite.findall("testcase")
    assert ok.attrib == {
        "classname": "unit.tests.test_a",
        "name": "test_ok",
        "file": "tests/test_a.py",
        "time": "0.250",
        "line": "3",
    }
    assert list(ok) == []
    # Control characters are not legal XML: written as pytest's junitxml writes them.
    legal = TRICKY.replace("\x01", "#x01")
    assert bad.get("classname") == "unit.tests.test_a.TestX"
    assert bad.get("name") == "test_bad[a::b]"
    failure = bad.find("failure")
    assert failure is not None
    assert failure.get("type") == "AssertionError"
    assert failure.get("message") == legal  # \n, \t, \r survive attribute normalisation
    assert failure.text == f"E  assert {legal}".replace("\r", "\n")  # XML text: CR -> LF
    case_props = [(p.get("name"), p.get("value")) for p in bad.findall("properties/property")]
    assert case_props == [("url", "http://127.0.0.1/?q=1&r=2"), ("note", legal)]
    out = bad.find("system-out")
    assert out is not None
    assert out.text == "captured <out>\nmore & more"
    skipped = skip.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == 'needs "docker" & <network>'
    assert "line" not in skip.attrib
    error = err.find("error")
    assert error is not None
    assert error.get("type") == "error"


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

"""Fault catalogue, issue 16 "JUnit" (case 9): reports a CI reader can trust.

Every test runs a real stage (``pytester.runpytest_subprocess``; real newman where the
newman gate is involved) and reads the JUnit file, the terminal or the ledger.

Cases:

* 9a ``test_control_characters_in_paths_keep_the_xml_well_formed`` - a directory name
  with a control character; also ``<failure type=...>`` of a plain test.
* 9b ``test_parameter_ids_with_double_colons_keep_their_classname``.
* 9c ``test_items_without_a_source_point_at_the_configuration`` - no ``file="."``, and
  ``test_lint_status_items_without_a_gate_table_point_at_the_stage_table``.
* 9d ``test_failure_message_names_the_failed_assertions_and_has_a_type`` (newman).
* 9e ``test_skipped_newman_assertions_are_reported_as_skipped`` (``pm.test.skip``).
* 9f ``test_newman_missing_is_reported_once_with_a_count`` and
  ``test_connection_refused_is_reported_once_with_a_count``.
* 9g ``test_closed_gate_skips_point_at_the_configuration_not_the_plugin`` (serial and
  ``-n 2``).
* 9h ``test_xfailed_tests_are_counted_as_xfailed`` (serial and ``-n 2``).
* 9i ``test_closed_gates_report_no_duration``.
"""

from __future__ import annotations

import json

import pytest

from tests.support.junit import cases_by_name, read_cases, report_xml, stage_report
from tests.support.spine import ledger_runs, project, run_stage
from tests.test_gate_newman import Api, cases, closed_port, collection_project, line_of

FAILING_UNIT = {
    "tests/unit/test_math.py": "def test_adds():\n    assert 1 + 1 == 3\n",
    "tests/integration/test_flow.py": "def test_one():\n    pass\n\ndef test_two():\n    pass\n",
}


def test_control_characters_in_paths_keep_the_xml_well_formed(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        '[stages.ci]\ngates = ["unit"]\n',
        **{"tests/unit/bell\x07dir/test_ctl.py": "def test_ctl():\n    assert 1 == 2\n"},
    )
    result = run_stage(pytester, "ci")
    result.assert_outcomes(failed=1)
    report = pytester.path / "reports" / "ci.xml"
    case = cases_by_name(report)["test_ctl"]  # parses: the XML is well-formed
    assert case.file == "tests/unit/bell#x07dir/test_ctl.py"
    assert case.classname == "unit.tests.unit.bell#x07dir.test_ctl"
    assert "\x07" not in report.read_text(encoding="utf-8")
    assert (case.outcome, case.error_type) == ("failure", "AssertionError")
    assert case.message == "assert 1 == 2"


def test_parameter_ids_with_double_colons_keep_their_classname(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        '[stages.ci]\ngates = ["unit"]\n',
        **{
            "tests/unit/test_ids.py": """
                import pytest

                @pytest.mark.parametrize("route", ["a::b", "plain"])
                def test_route(route):
                    pass
            """
        },
    )
    result = run_stage(pytester, "ci")
    result.assert_outcomes(passed=2)
    found = {(c.classname, c.name) for c in read_cases(stage_report(pytester.path, "ci"))}
    assert found == {
        ("unit.tests.unit.test_ids", "test_route[a::b]"),
        ("unit.tests.unit.test_ids", "test_route[plain]"),
    }


def test_items_without_a_source_point_at_the_configuration(
    pytester: pytest.Pytester, newman_bin: str
) -> None:
    root = collection_project(pytester, "nothing.postman_collection.json", newman_bin, copy=False)
    result = run_stage(pytester, "api")
    result.assert_outcomes(failed=1)
    (case,) = cases(root).values()
    assert case.file == "pyproject.toml"
    assert case.line == str(line_of(root / "pyproject.toml", "gates.newman]"))


def test_lint_status_items_without_a_gate_table_point_at_the_stage_table(
    pytester: pytest.Pytester,
) -> None:
    root = project(
        pytester,
        '[stages.check]\ngates = ["lint"]\n',
        **{"src/shop.py": "def answer() -> int:\n    return 42\n"},
    )
    result = run_stage(pytester, "check")
    result.assert_outcomes(passed=3)
    line = str(line_of(root / "pyproject.toml", "stages.check]"))
    found = {(c.file, c.line) for c in read_cases(stage_report(root, "check"))}
    assert found == {("pyproject.toml", line)}


def test_failure_message_names_the_failed_assertions_and_has_a_type(
    pytester: pytest.Pytester, api: Api, newman_bin: str
) -> None:
    root = collection_project(
        pytester, "failing.postman_collection.json", newman_bin, base_url=api.url
    )
    result = run_stage(pytester, "api")
    result.assert_outcomes(passed=3, failed=1)
    failure = cases(root)["get missing"]
    assert (failure.outcome, failure.error_type) == ("failure", "GateCheckFailed")
    assert failure.message == "2 assertions failed: 'status is 200', 'answers json'"


def test_skipped_newman_assertions_are_reported_as_skipped(
    pytester: pytest.Pytester, api: Api, newman_bin: str
) -> None:
    root = collection_project(
        pytester, "skip.postman_collection.json", newman_bin, base_url=api.url, copy=False
    )
    script = "pm.test.skip('orders are paginated', () => pm.expect(1).to.eql(2));"
    (root / "api" / "skip.postman_collection.json").write_text(
        json.dumps(
            {
                "info": {
                    "name": "skip",
                    "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"
                    "collection.json",
                },
                "item": [
                    {
                        "name": "paging",
                        "request": {"method": "GET", "url": "{{baseUrl}}/health"},
                        "event": [{"listen": "test", "script": {"exec": [script]}}],
                    }
                ],
            }
        )
    )
    result = run_stage(pytester, "api", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    skipped = cases(root)["paging"]
    assert skipped.outcome == "skipped"
    assert "orders are paginated" in skipped.message


def test_newman_missing_is_reported_once_with_a_count(pytester: pytest.Pytester, api: Api) -> None:
    root = collection_project(
        pytester, "shop.postman_collection.json", "node_modules/.bin/newman", base_url=api.url
    )
    result = run_stage(pytester, "api", "-rs")
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=3)
    # The skips of generated items point at the collection, not at the plugin's code.
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] api/shop.postman_collection.json:*"])
    assert "pytest_release/gates" not in result.stdout.str()
    failures = [c for c in cases(root).values() if c.outcome == "failure"]
    assert [c.name for c in failures] == ["(newman run)"]
    text = failures[0].text
    assert "newman is not installed" in text
    assert "(3 request item(s) not run, skipped)" in text
    assert result.stdout.str().count("newman is not installed") <= 2  # failure + summary


def test_connection_refused_is_reported_once_with_a_count(
    pytester: pytest.Pytester, newman_bin: str
) -> None:
    port = closed_port()
    root = collection_project(
        pytester, "shop.postman_collection.json", newman_bin, base_url=f"http://127.0.0.1:{port}"
    )
    result = run_stage(pytester, "api")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    failures = [c for c in cases(root).values() if c.outcome == "failure"]
    assert [c.name for c in failures] == ["health"]
    message = failures[0].message
    assert message == (
        f"request error: connect ECONNREFUSED 127.0.0.1:{port} "
        "(the same for 3 requests; the others are skipped)"
    )


def test_closed_gate_skips_point_at_the_configuration_not_the_plugin(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    root = project(pytester, '[stages.ci]\ngates = ["unit", "integration"]\n', **FAILING_UNIT)
    result = run_stage(pytester, "ci", "-rs", *xdist)
    result.assert_outcomes(failed=1, skipped=2)
    line = line_of(root / "pyproject.toml", "stages.ci]")
    result.stdout.fnmatch_lines([f"SKIPPED [2] pyproject.toml:{line}: gate 'unit' failed"])
    assert "stage/session.py" not in result.stdout.str()


def test_xfailed_tests_are_counted_as_xfailed(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        '[stages.ci]\ngates = ["unit"]\n',
        **{
            "tests/unit/test_x.py": """
                import pytest

                def test_ok():
                    pass

                @pytest.mark.skip(reason="later")
                def test_later():
                    pass

                @pytest.mark.xfail(reason="known bug")
                def test_known_bug():
                    assert False
            """
        },
    )
    result = run_stage(pytester, "ci", *xdist)
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        ["gate unit: passed - 1 passed, 0 failed, 1 skipped, 0 closed, 1 xfailed in *s"]
    )
    (run,) = ledger_runs(pytester.path)
    assert (run["gates"]["unit"]["skipped"], run["gates"]["unit"]["xfailed"]) == (1, 1)


def test_closed_gates_report_no_duration(pytester: pytest.Pytester) -> None:
    project(pytester, '[stages.ci]\ngates = ["unit", "integration"]\n', **FAILING_UNIT)
    result = run_stage(pytester, "ci")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["gate integration: closed (gate 'unit' failed) - 0 passed, 0 failed, 0 skipped, 2 closed"]
    )
    (run,) = ledger_runs(pytester.path)
    assert run["gates"]["integration"]["duration"] == 0
    suites = {s.get("name"): s for s in report_xml(pytester.path / "reports" / "ci.xml")}
    assert suites["integration"].get("time") == "0.000"

"""A coverage threshold on a gate: measured on every process, checked after the gate."""

from __future__ import annotations

import pytest

from tests.support.junit import cases_by_name
from tests.support.spine import project, run_stage

APP = """
def covered(x):
    if x > 0:
        return "positive"
    return "not positive"


def uncovered_one():
    return 1


def uncovered_two():
    return 2
"""

TESTS = {
    "app.py": APP,
    "tests/unit/test_a.py": "from app import covered\n\ndef test_a(): assert covered(1)\n",
    "tests/unit/test_b.py": "from app import covered\n\ndef test_b(): assert covered(0)\n",
    "tests/unit/test_c.py": "def test_c(): pass\n",
    "tests/integration/test_i.py": "def test_i(): pass\n",
}


def _config(fail_under: int) -> str:
    return f"""
    [gates.unit]
    coverage = {{ fail_under = {fail_under}, source = ["app.py"] }}
    [stages.ci]
    gates = ["unit", "integration"]
    """


def test_below_threshold_fails_the_gate_with_the_percentage(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(pytester, _config(90), **TESTS)
    pytester.syspathinsert()
    result = run_stage(pytester, "ci", *xdist)
    assert result.ret == 1
    # 6 of 8 statements run: both tests' lines together, from whichever worker ran them.
    result.stdout.fnmatch_lines(
        ["*coverage 75.0% is below the threshold of gate 'unit': 90%*", "*app.py*8*2*75%*"]
    )
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["gate integration: closed (gate 'unit' failed)*"])
    props = cases_by_name(pytester.path / "reports" / "ci.xml")["coverage"].properties
    assert props["coverage_percent"] == "75.00"
    assert props["coverage_fail_under"] == "90"


def test_at_or_above_threshold_passes(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(pytester, _config(75), **TESTS)
    pytester.syspathinsert()
    result = run_stage(pytester, "ci", *xdist)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=5)


def test_no_measured_code_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        [gates.unit]
        coverage = { fail_under = 10, source = ["app.py"] }
        [stages.ci]
        gates = ["unit"]
        """,
        **{"app.py": APP, "tests/unit/test_c.py": "def test_c(): pass\n"},
    )
    result = run_stage(pytester, "ci")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no coverage data for gate 'unit'*check coverage.source*"])

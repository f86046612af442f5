"""What a finished test leaves behind in the process that records the stage (issue 27,
item 1): no per-test record in memory once the test finished, yet a JUnit report with
every case, serially and under xdist (the controller records).

The controller's state is read by a ``conftest.py`` hook at the start of session finish
(before the stage writes its reports), on the process that records: a test of the run
cannot see the controller under xdist.  Memory itself is measured in
``benchmarks/overhead.py`` (the slope table of docs/benchmarks.md), not here.
"""

from __future__ import annotations

import json

import pytest

from tests.support.junit import report_xml as junit
from tests.support.spine import XDIST_MODES, project, run_stage

PASSING = 40

CONFTEST = """
import json
import pytest
from pytest_release.stage.session import get_stage_session

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    stage = get_stage_session(session.config)
    if stage is None or stage.is_worker:
        return
    with open("recorder-state.json", "w") as out:
        json.dump({
            "open_cases": sorted(stage.recorder.cases),
            "failed_cases": [c.nodeid for c in getattr(stage.recorder, "failed", [])],
            "not_run": stage.tracker.not_run(),
        }, out)
"""

TESTS = (
    "import pytest\n\n"
    + "".join(f"def test_pass_{i}():\n    pass\n\n" for i in range(PASSING))
    + "def test_fails():\n    assert 1 == 2\n\n"
    + "def test_skips():\n    pytest.skip('not here')\n\n"
    + "@pytest.mark.xfail(reason='known')\ndef test_xfails():\n    assert 0\n"
)


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_finished_tests_leave_no_record_but_every_case_is_in_junit(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(
        pytester,
        '[stages.ci]\ngates = ["unit"]\n',
        **{"conftest.py": CONFTEST, "tests/unit/test_many.py": TESTS},
    )
    result = run_stage(pytester, "ci", *xdist)
    result.assert_outcomes(passed=PASSING, failed=1, skipped=1, xfailed=1)
    state = json.loads((pytester.path / "recorder-state.json").read_text(encoding="utf-8"))
    # Nothing is kept for a finished test but a failing case (GitHub output lists it).
    assert state == {
        "open_cases": [],
        "failed_cases": ["tests/unit/test_many.py::test_fails"],
        "not_run": [],
    }
    root = junit(pytester.path / "reports" / "ci.xml")
    (suite,) = root.iter("testsuite")
    names = sorted(case.get("name", "") for case in suite.iter("testcase"))
    expected = sorted(
        [f"test_pass_{i}" for i in range(PASSING)] + ["test_fails", "test_skips", "test_xfails"]
    )
    assert names == expected
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        str(PASSING + 3),
        "1",
        "0",
    )
    assert suite.get("skipped") == "2"  # the skip and the xfail
    outcomes = {
        case.get("name"): [child.tag for child in case if child.tag != "properties"]
        for case in suite.iter("testcase")
    }
    assert outcomes["test_fails"] == ["failure"]
    assert outcomes["test_skips"] == ["skipped"]
    assert outcomes["test_pass_0"] == []


LATE_SECRET = "tok&en<42>x"

LATE_TESTS = f"""
import pytest
from pytest_release.stage.session import get_stage_session

@pytest.mark.parametrize("value", [{LATE_SECRET!r}], ids=[{LATE_SECRET!r}])
def test_a_param(value):
    pass

def test_b_learns_the_secret(request):
    # A gate plugin reads a secret from its settings during the run (e.g. Slack's URL).
    get_stage_session(request.config).add_secrets([{LATE_SECRET!r}])
"""


def test_a_secret_learnt_after_a_case_was_spooled_is_masked_in_junit(
    pytester: pytest.Pytester,
) -> None:
    """Serial: a secret added on a worker stays on that worker (its reports are masked
    there), so only the recording process's own late secrets reach the spooled lines."""
    project(pytester, '[stages.ci]\ngates = ["unit"]\n', **{"tests/unit/test_late.py": LATE_TESTS})
    result = run_stage(pytester, "ci")
    result.assert_outcomes(passed=2)
    text = (pytester.path / "reports" / "ci.xml").read_text(encoding="utf-8")
    names = [
        case.get("name", "")
        for case in junit(pytester.path / "reports" / "ci.xml").iter("testcase")
    ]
    assert "test_a_param[***]" in names, names
    assert "tok&amp;en&lt;42&gt;x" not in text
    assert "tok" not in text


def test_spooled_cases_and_items_that_never_ran_share_one_suite(
    pytester: pytest.Pytester,
) -> None:
    """``-x``: a passed case (spooled), the failing one (kept) and two that never ran
    (listed as skipped, never as passed) in one gate's suite, with its counts."""
    tests = "def test_0():\n    pass\n\ndef test_1():\n    assert 0\n\n"
    tests += "def test_2():\n    pass\n\ndef test_3():\n    pass\n"
    project(pytester, '[stages.ci]\ngates = ["unit"]\n', **{"tests/unit/test_x.py": tests})
    result = run_stage(pytester, "ci", "-x")
    result.assert_outcomes(passed=1, failed=1)
    (suite,) = junit(pytester.path / "reports" / "ci.xml").iter("testsuite")
    outcomes = {
        case.get("name"): [child.tag for child in case if child.tag != "properties"]
        for case in suite.iter("testcase")
    }
    assert outcomes == {
        "test_0": [],
        "test_1": ["failure"],
        "test_2": ["skipped"],
        "test_3": ["skipped"],
    }
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == [
        "4",
        "1",
        "0",
        "2",
    ]
    skipped = [s.get("message", "") for s in suite.iter("skipped")]
    assert all(m.startswith("not run: the stage ended (failed)") for m in skipped), skipped

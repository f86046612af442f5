"""What a stage does per test (issue 27, item 4): the work of the per-item hooks
(``pytest_runtest_setup``, ``pytest_runtest_makereport``, ``pytest_runtest_logreport``:
gate accounting, report preparation, the JUnit case) is counted as calls into
pytest-release's own functions while the tests run, a number that does not depend on
the machine's load.  What can be done once per gate or per session (escaping a file's
name, looking for a closed gate before any failed) must not be paid per test again.

Speed itself is measured in ``benchmarks/overhead.py`` (docs/benchmarks.md), not here.
"""

from __future__ import annotations

import json

import pytest

from tests.support.junit import report_xml as junit
from tests.support.spine import project, run_stage

# Counts calls (the profiler's "call" events: a generator's resumption is one) of
# functions defined in pytest_release while the session runs its tests, on the process
# that records the stage.
CONFTEST = """
import json, sys
import pytest

calls = [0]

def count(frame, event, arg):
    if event == "call" and "/pytest_release/" in frame.f_code.co_filename:
        calls[0] += 1

@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    sys.setprofile(count)
    try:
        return (yield)
    finally:
        sys.setprofile(None)
        with open("plugin-calls.json", "w") as out:
            json.dump(calls[0], out)
"""

# The most calls into pytest-release a passed test may cost (its three reports).  Before
# the per-test work was cut it cost 59; now 25 (the hooks' own frames, the gate tally,
# the JUnit case turned into its line and spooled).
CALLS_PER_PASSED_TEST = 30


def _calls_for(pytester: pytest.Pytester, tests: int) -> int:
    body = "".join(f"def test_{i}():\n    pass\n\n" for i in range(tests))
    project(
        pytester,
        '[stages.ci]\ngates = ["unit"]\n',
        **{"conftest.py": CONFTEST, "tests/unit/test_many.py": body},
    )
    result = run_stage(pytester, "ci")
    result.assert_outcomes(passed=tests)
    assert len(junit(pytester.path / "reports" / "ci.xml").findall(".//testcase")) == tests
    calls: int = json.loads((pytester.path / "plugin-calls.json").read_text(encoding="utf-8"))
    return calls


def test_a_passed_test_costs_a_bounded_number_of_plugin_calls(pytester: pytest.Pytester) -> None:
    few = _calls_for(pytester, 20)
    many = _calls_for(pytester, 120)
    per_test = (many - few) / 100
    assert per_test <= CALLS_PER_PASSED_TEST, (
        f"a passed test costs {per_test:.1f} calls into pytest_release "
        f"(at most {CALLS_PER_PASSED_TEST}): per-test work that could be per gate or session?"
    )

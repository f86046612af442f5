"""A stage never passes for tests that did not run (issue 24, items 2 and 10).

Cases:

2. whatever drops a gate's test files before collection — ``--ignore``, ``--ignore-glob``,
   ``collect_ignore`` / ``collect_ignore_glob`` in a conftest, a narrower path argument
   — makes the run partial, naming the gate and a file, so it satisfies no ``requires``
   (``--deselect`` of a whole file was already partial, and stays so); with and without
   ``-n 2``. A gate that selects no test in a full run fails the stage, naming its paths
   and the fix, unless it sets ``allow_empty = true`` (validated);
10. a stage that selects no test at all is ``failed`` in the ledger and exits 5 (pytest's
    ``NO_TESTS_COLLECTED``).
"""

from __future__ import annotations

import pytest

from tests.support.junit import read_cases
from tests.support.pipelines import stages_of_gates
from tests.support.spine import ledger_runs, project, run_stage

PIPELINE = stages_of_gates(
    {"unit": "tests/unit/*", "smoke": "tests/smoke/*"},
    {"one": ["unit", "smoke"], "two": ["smoke"]},
)

# The unit gate holds a failing test: any run that drops it and passes would lie.
TESTS = {
    "tests/unit/test_u.py": """
        def test_unit_passes():
            pass

        def test_unit_fails():
            assert False, "the dropped gate's failing test"
    """,
    "tests/smoke/test_s.py": "def test_smoke():\n    pass\n",
}

NARROWINGS = [
    pytest.param(["--ignore=tests/unit"], None, id="ignore"),
    pytest.param(["--ignore-glob=*/unit/*"], None, id="ignore-glob"),
    pytest.param(["tests/smoke"], None, id="narrower-path"),
    pytest.param([], 'collect_ignore = ["tests/unit/test_u.py"]\n', id="collect_ignore"),
    pytest.param([], 'collect_ignore_glob = ["tests/unit/*"]\n', id="collect_ignore_glob"),
]


@pytest.mark.parametrize(("args", "conftest"), NARROWINGS)
def test_a_run_that_drops_a_gates_files_is_partial(
    pytester: pytest.Pytester, args: list[str], conftest: str | None, xdist: list[str]
) -> None:
    files = dict(TESTS)
    if conftest is not None:
        files["conftest.py"] = conftest
    project(pytester, PIPELINE, **files)
    result = run_stage(pytester, "one", *args, *xdist)
    output = result.stdout.str()
    reason = (
        "gate 'unit': 1 test file(s) matching its paths not collected, e.g. tests/unit/test_u.py"
    )
    result.stdout.fnmatch_lines([f"*partial run (*{reason}*satisfies no stage's requires*"])
    (run,) = ledger_runs(pytester.path)
    assert run["partial"] is not None, output
    assert reason in run["partial"]
    assert "test_unit_fails" not in output  # the failing test really was dropped
    refused = run_stage(pytester, "two")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*requires 'one' (only partial runs (1)*run the whole stage)*"])


def test_deselecting_a_whole_file_is_partial(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(pytester, PIPELINE, **TESTS)
    result = run_stage(pytester, "one", "--deselect", "tests/unit/test_u.py", *xdist)
    (run,) = ledger_runs(pytester.path)
    assert run["partial"] is not None
    assert "2 item(s) deselected" in run["partial"]
    assert run_stage(pytester, "two").ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()


def test_the_full_run_is_not_partial(pytester: pytest.Pytester, xdist: list[str]) -> None:
    # The reference: nothing dropped, nothing partial; the failing unit test fails it.
    project(pytester, PIPELINE, **TESTS)
    result = run_stage(pytester, "one", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (run,) = ledger_runs(pytester.path)
    assert (run["outcome"], run["partial"]) == ("failed", None)


EMPTY_GATE = """
[gates.unit]
paths = ["tests/unit/*"]
[gates.smoke]
paths = ["tests/smoke/*"]
{allow}
[stages.one]
gates = ["unit", "smoke"]
requires = []
[stages.two]
gates = ["unit"]
requires = ["one"]
"""


def test_a_gate_that_selects_no_test_in_a_full_run_fails_the_stage(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    # The smoke tests moved (tests/smoke_tests/) and no longer match the gate's paths.
    project(
        pytester,
        EMPTY_GATE.format(allow=""),
        **{
            "tests/unit/test_u.py": "def test_unit():\n    pass\n",
            "tests/smoke_tests/test_s.py": "def test_smoke():\n    pass\n",
        },
    )
    result = run_stage(pytester, "one", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*release stage one: failed*"])
    # (not fnmatch: the TOML table's brackets are glob characters)
    assert (
        "gate 'smoke' selected no test; paths: tests/smoke/*; fix: add tests (or "
        "@pytest.mark.gate('smoke')) or set allow_empty = true in "
        f"[tool.pytest-release.gates.smoke] ({pytester.path / 'pyproject.toml'})"
    ) in result.stdout.lines
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "failed"
    assert "gate 'smoke' selected no test" in run["message"]
    failures = [c.message for c in read_cases(pytester.path / "reports" / "one.xml")]
    assert any("gate 'smoke' selected no test" in m for m in failures)
    assert run_stage(pytester, "two").ret == pytest.ExitCode.USAGE_ERROR


def test_a_gate_allowed_to_be_empty_passes(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        EMPTY_GATE.format(allow="allow_empty = true"),
        **{"tests/unit/test_u.py": "def test_unit():\n    pass\n"},
    )
    result = run_stage(pytester, "one", *xdist)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*release stage one: passed*", "gate smoke: empty*"])
    assert run_stage(pytester, "two").ret == pytest.ExitCode.OK


def test_allow_empty_is_validated(pytester: pytest.Pytester) -> None:
    project(pytester, EMPTY_GATE.format(allow='allow_empty = "sometimes"'))
    result = run_stage(pytester, "one")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*gates.smoke.allow_empty = 'sometimes': Input should be a valid boolean*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_a_stage_that_selects_no_test_fails_with_exit_5(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(
        pytester, EMPTY_GATE.format(allow=""), **{"tests/other/test_o.py": "def test_o(): pass\n"}
    )
    result = run_stage(pytester, "one", *xdist)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*release stage one: failed*", "*stage 'one' selected no test: its gates are empty*"]
    )
    (run,) = ledger_runs(pytester.path)
    assert run["outcome"] == "failed"
    assert run_stage(pytester, "two").ret == pytest.ExitCode.USAGE_ERROR

"""Gate membership, order, closing and parallelism, with and without xdist."""

from __future__ import annotations

import pytest

from tests.support.gate_kinds import file_check_conftest
from tests.support.junit import cases_by_name, read_case, read_cases, report_xml
from tests.support.spine import RECORDER, assert_usage_error, events, project, run_stage

THREE_GATES = """
[gates.lint]
kind = "tests"
[stages.check]
gates = ["lint", "unit", "integration"]
"""


# A gate selecting the tests marked ``api``, and the conftest registering that marker.
API_GATE = '[gates.api]\nmarkers = ["api"]\n'
REGISTER_API_MARKER = """
def pytest_configure(config):
    config.addinivalue_line("markers", "api: api tests")
"""


def _spans(log: list[list[object]]) -> dict[str, tuple[float, float]]:
    starts = {e[1]: e[2] for e in log if e[0] == "start"}
    ends = {e[1]: e[2] for e in log if e[0] == "end"}
    return {name: (float(starts[name]), float(ends[name])) for name in starts}  # type: ignore[arg-type]


def test_gates_run_in_configured_order(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        THREE_GATES,
        **{
            "conftest.py": RECORDER,
            "tests/unit/test_u.py": """
                import time
                def test_u1(record): time.sleep(0.05)
                def test_u2(record): time.sleep(0.05)
                def test_u3(record): time.sleep(0.05)
            """,
            "tests/integration/test_i.py": """
                def test_i1(record): pass
                def test_i2(record): pass
            """,
            "tests/test_l.py": """
                import pytest, time
                @pytest.mark.gate("lint")
                def test_l1(record): time.sleep(0.1)
                @pytest.mark.gate("lint")
                def test_l2(record): time.sleep(0.1)
            """,
        },
    )
    result = run_stage(pytester, "check", *xdist)
    result.assert_outcomes(passed=7)
    spans = _spans(events(pytester.path / "events.jsonl"))
    groups = {
        "lint": ["test_l1", "test_l2"],
        "unit": ["test_u1", "test_u2", "test_u3"],
        "integration": ["test_i1", "test_i2"],
    }
    for before, after in (("lint", "unit"), ("unit", "integration")):
        last_end = max(spans[n][1] for n in groups[before])
        first_start = min(spans[n][0] for n in groups[after])
        assert last_end <= first_start, f"gate {after} started before {before} finished"


def test_failed_gate_closes_dependent_gates(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        THREE_GATES,
        **{
            "conftest.py": RECORDER,
            "tests/test_l.py": """
                import pytest
                @pytest.mark.gate("lint")
                def test_lint_fails(record): assert False, "style problem"
                @pytest.mark.gate("lint")
                def test_lint_ok(record): pass
            """,
            "tests/unit/test_u.py": """
                def test_u1(record): pass
                def test_u2(record): pass
                def test_u3(record): pass
            """,
            "tests/integration/test_i.py": "def test_i1(record): pass\n",
        },
    )
    result = run_stage(pytester, "check", *xdist, "-rs")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1, skipped=4)
    result.stdout.fnmatch_lines(["*gate 'lint' failed*"])
    ran = {e[1] for e in events(pytester.path / "events.jsonl")}
    assert ran == {"test_lint_fails", "test_lint_ok"}, "an item of a closed gate ran"
    suites = {s.get("name"): s for s in report_xml(pytester.path / "reports" / "check.xml")}
    unit = [read_case(case) for case in suites["unit"].iter("testcase")]
    assert unit
    assert {(case.outcome, case.message) for case in unit} == {("skipped", "gate 'lint' failed")}
    result.stdout.fnmatch_lines(
        [
            "gate lint: failed*",
            "gate unit: closed (gate 'lint' failed)*3 closed*",
            "gate integration: closed (gate 'lint' failed)*1 closed*",
        ]
    )


DAG = """
[gates.left]
paths = ["tests/left/*"]
after = []
[gates.right]
paths = ["tests/right/*"]
after = []
[gates.join]
paths = ["tests/join/*"]
after = ["left", "right"]
[stages.dag]
gates = ["left", "right", "join"]
"""

RENDEZVOUS = """
import pathlib, time
def meet(mine, other):
    here = pathlib.Path(__file__).parent.parent.parent
    (here / mine).touch()
    deadline = time.monotonic() + 20
    while not (here / other).exists():
        assert time.monotonic() < deadline, f"{other} never ran concurrently with {mine}"
        time.sleep(0.02)
"""


def test_independent_gates_run_in_parallel_under_xdist(pytester: pytest.Pytester) -> None:
    # left and right wait for each other: this passes only if they run at the same time.
    project(
        pytester,
        DAG,
        **{
            "conftest.py": RECORDER,
            "tests/rendezvous.py": RENDEZVOUS,
            "tests/left/test_left.py": """
                import sys, pathlib
                sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
                from rendezvous import meet
                def test_left(record): meet("left.flag", "right.flag")
            """,
            "tests/right/test_right.py": """
                import sys, pathlib
                sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
                from rendezvous import meet
                def test_right(record): meet("right.flag", "left.flag")
            """,
            "tests/join/test_join.py": "def test_join(record): pass\n",
        },
    )
    result = run_stage(pytester, "dag", "-n", "2")
    result.assert_outcomes(passed=3)
    spans = _spans(events(pytester.path / "events.jsonl"))
    assert spans["test_join"][0] >= max(spans["test_left"][1], spans["test_right"][1])


def test_dag_failure_closes_only_dependents(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        DAG
        + """
[gates.solo]
paths = ["tests/solo/*"]
after = ["right"]
[stages.dag2]
gates = ["left", "right", "join", "solo"]
""",
        **{
            "conftest.py": RECORDER,
            "tests/left/test_left.py": "def test_left(record): assert False\n",
            "tests/right/test_right.py": "def test_right(record): pass\n",
            "tests/join/test_join.py": "def test_join(record): pass\n",
            "tests/solo/test_solo.py": "def test_solo(record): pass\n",
        },
    )
    result = run_stage(pytester, "dag2", *xdist)
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    ran = {e[1] for e in events(pytester.path / "events.jsonl")}
    assert ran == {"test_left", "test_right", "test_solo"}
    result.stdout.fnmatch_lines(["gate join: closed (gate 'left' failed)*", "gate solo: passed*"])


def test_items_outside_the_stage_are_deselected(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(
        pytester,
        API_GATE + '[stages.only-api]\ngates = ["api"]\n',
        **{
            "tests/test_mixed.py": """
                import pytest
                pytestmark = []
                @pytest.mark.api
                def test_by_marker(): pass
                @pytest.mark.gate("api")
                def test_by_gate_marker(): pass
                def test_other(): raise AssertionError("must not run")
                @pytest.mark.gate("unit")
                def test_other_gate(): raise AssertionError("must not run")
            """,
            "conftest.py": REGISTER_API_MARKER
            + (
                "def pytest_deselected(items):\n"
                '    with open("deselected.txt", "a") as f:\n'
                '        f.writelines(i.nodeid + "\\n" for i in items)\n'
            ),
        },
    )
    result = run_stage(pytester, "only-api", *xdist)
    result.assert_outcomes(passed=2)
    # Every xdist worker collects, so each reports the same deselection.
    deselected = set((pytester.path / "deselected.txt").read_text().split())
    assert sorted(deselected) == [
        "tests/test_mixed.py::test_other",
        "tests/test_mixed.py::test_other_gate",
    ]


def test_markers_of_modules_and_classes_put_their_items_in_gates(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    # The closest marker wins, the item's own first, then its class's, then its
    # module's (looked up once per class and module): as get_closest_marker decides.
    project(
        pytester,
        API_GATE + '[stages.check]\ngates = ["api", "unit", "integration"]\n',
        **{
            "tests/unit/test_marked.py": """
                import pytest
                pytestmark = pytest.mark.gate("integration")
                def test_module_marker(): pass
                @pytest.mark.gate("unit")
                def test_own_marker(): pass
                @pytest.mark.api
                class TestApi:
                    def test_class_by_plan_marker(self): pass
                    @pytest.mark.gate("unit")
                    def test_own_beats_module(self): pass
                @pytest.mark.gate("api")
                class TestGate:
                    def test_class_gate(self): pass
                    def test_class_gate_again(self): pass
            """,
            "conftest.py": REGISTER_API_MARKER,
        },
    )
    run_stage(pytester, "check", *xdist).assert_outcomes(passed=6)
    cases = read_cases(pytester.path / "reports" / "check.xml")
    gates = {c.name: c.classname.split(".")[0] for c in cases}
    assert gates == {
        # An explicit gate marker anywhere up the chain beats the plan's markers.
        "test_module_marker": "integration",
        "test_own_marker": "unit",
        "test_class_by_plan_marker": "integration",
        "test_own_beats_module": "unit",
        "test_class_gate": "api",
        "test_class_gate_again": "api",
    }


def test_generated_items_through_the_gate_hook(pytester: pytest.Pytester, xdist: list[str]) -> None:
    project(
        pytester,
        """
        [gates.check-files]
        kind = "file-check"
        required = ["README.md", "LICENSE"]
        [stages.files]
        gates = ["check-files", "unit"]
        """,
        **{
            "README.md": "hello\n",
            "conftest.py": file_check_conftest(
                """
                from typing import Literal
                import pytest
                from pytest_release.config.tables import GateConfig
                from pytest_release.gating.gate_node import GateItem
                from pytest_release.errors import GateCheckFailed

                class FileCheckGate(GateConfig):
                    kind: Literal["file-check"] = "file-check"
                    required: tuple[str, ...] = ()

                class FileExists(GateItem):
                    def runtest(self):
                        if not (self.config.rootpath / self.name).exists():
                            raise GateCheckFailed(f"{self.name} is missing; add it")
                """
            ),
            "tests/unit/test_u.py": "def test_u(): pass\n",
        },
    )
    result = run_stage(pytester, "files", *xdist)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*LICENSE is missing; add it*"])
    assert "Traceback" not in result.stdout.str()
    cases = cases_by_name(pytester.path / "reports" / "files.xml")
    assert set(cases) == {"README.md", "LICENSE", "test_u"}
    assert cases["LICENSE"].classname == "check-files.gate:check-files"


def test_serial_gate_runs_on_one_worker_in_order(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        [gates.steps]
        paths = ["tests/steps/*"]
        serial = true
        [stages.rollout]
        gates = ["steps"]
        """,
        **{
            "conftest.py": RECORDER,
            "tests/steps/test_steps.py": "\n".join(
                f"def test_step_{i:02d}(record): pass" for i in range(12)
            ),
        },
    )
    result = run_stage(pytester, "rollout", "-n", "2")
    result.assert_outcomes(passed=12)
    log = [e for e in events(pytester.path / "events.jsonl") if e[0] == "start"]
    assert [e[1] for e in log] == [f"test_step_{i:02d}" for i in range(12)]
    assert len({e[3] for e in log}) == 1, "a serial gate was split across workers"


def test_stage_selecting_nothing_fails_naming_empty_gates(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    project(pytester, THREE_GATES, **{"tests/test_other.py": "def test_x(): pass\n"})
    result = run_stage(pytester, "check", *xdist)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        ["*stage 'check' selected no test: its gates are empty (lint, unit, integration)*"]
    )
    failures = [
        c for c in read_cases(pytester.path / "reports" / "check.xml") if c.outcome == "failure"
    ]
    assert failures
    assert "selected no test" in failures[0].message


def test_unknown_gate_in_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        THREE_GATES,
        **{
            "tests/test_x.py": """
                import pytest
                @pytest.mark.gate("unti")
                def test_typo(): pass
            """
        },
    )
    result = run_stage(pytester, "check")
    assert_usage_error(result, "*@pytest.mark.gate('unti') names no configured gate; gates in*")


LOADED = """
import json, sys

def pytest_sessionfinish(session):
    plugins = [n for n, _ in session.config.pluginmanager.list_name_plugin()]
    modules = sorted(m for m in sys.modules if m.startswith("pytest_release.gates."))
    name = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(f"loaded-{name}.json", "w") as f:
        json.dump({"plugins": plugins, "modules": modules}, f)
"""


def test_a_stage_loads_only_the_gate_kinds_it_runs(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    import json

    project(
        pytester,
        """
        [gates.unit]
        paths = ["tests"]
        [gates.checks]
        kind = "lint"
        tools = ["ruff-check"]
        [stages.check]
        gates = ["unit"]
        """,
        **{"conftest.py": LOADED, "tests/test_u.py": "def test_u(): pass\n"},
    )
    result = run_stage(pytester, "check", *xdist)
    result.assert_outcomes(passed=1)
    reports = sorted(pytester.path.glob("loaded-*.json"))
    assert len(reports) == (3 if xdist else 1)
    for report in reports:
        loaded = json.loads(report.read_text())
        # The lint gate is configured (its table was validated: its config module, by the
        # process that validates; xdist workers take its plan and never import it), but
        # no gate of the stage is a lint, e2e, docker, newman or canary gate.
        validated = "pytest_release.gates.lint.config" in loaded["modules"]
        assert validated == (report.name == "loaded-main.json"), report.name
        assert not [m for m in loaded["modules"] if m.endswith(".plugin")], loaded
        assert not [m for m in loaded["modules"] if ".canary" in m or ".e2e" in m], loaded
        ours = [p for p in loaded["plugins"] if p.startswith("pytest-release:")]
        assert ours == [], ours  # no gate plugin, no coverage, no Kubernetes


def test_a_stage_still_checks_the_gates_it_does_not_run(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        [gates.unit]
        paths = ["tests"]
        [gates.e2e]
        headless = "sometimes"
        [stages.check]
        gates = ["unit"]
        """,
        **{"tests/test_u.py": "def test_u(): pass\n"},
    )
    result = run_stage(pytester, "check")
    assert_usage_error(result, "*gates.e2e.headless*sometimes*")


def test_a_stage_registers_the_plugins_of_its_gate_kinds(pytester: pytest.Pytester) -> None:
    import json

    project(
        pytester,
        """
        [gates.unit]
        paths = ["tests"]
        coverage = { fail_under = 0 }
        [stages.check]
        gates = ["unit", "e2e"]
        """,
        **{"conftest.py": LOADED, "tests/test_u.py": "def test_u(): pass\n"},
    )
    result = run_stage(pytester, "check")
    result.assert_outcomes(passed=2)  # the test and the coverage item
    loaded = json.loads((pytester.path / "loaded-main.json").read_text())
    ours = {p for p in loaded["plugins"] if p.startswith("pytest-release:")}
    assert ours == {
        "pytest-release:pytest_release.gates.e2e.plugin",
        "pytest-release:pytest_release.gating.coverage",
    }

"""Under xdist the controller validates the configuration once and hands each worker the
stage's plan (``workerinput``): a worker reads no TOML, imports no pydantic and no gate
kind it does not run, and behaves as a worker that validated (issue 27, item 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.gate_kinds import file_check_conftest
from tests.support.junit import read_cases, stage_report
from tests.support.spine import ledger_runs, project, run_stage

# Gates of kinds the stage does not run are configured (a lint table, a canary platform):
# the controller validates them, the workers never import them.
TOML = """
[stages.ci]
gates = ["unit", "integration", "smoke"]
[gates.unit]
markers = ["slow"]
paths = ["tests/unit/*"]
[gates.integration]
paths = ["tests/integration/*"]
[gates.smoke]
paths = ["tests/smoke/*"]
[gates.lint]
kind = "lint"
tools = ["ruff-check"]
[gates.canary.platform]
type = "local-process"
command = ["python3", "-c", "pass", "{port}"]
stable_image = "v1"
"""

FILES = {
    "conftest.py": """
        import json, os, sys

        def pytest_sessionfinish(session):
            # Every process writes which modules it imported, once its session ended. Named
            # by xdist's workerinput, not $PYTEST_XDIST_WORKER: under an outer xdist run the
            # inner controller inherits the outer worker's name (CI recorded it as gw1).
            worker = getattr(session.config, "workerinput", {}).get("workerid", "controller")
            with open(f"modules-{worker}.json", "w") as out:
                json.dump(sorted(sys.modules), out)
        """,
    "tests/unit/test_u.py": """
        import pytest

        def test_unit_a(): pass
        def test_unit_b(): pass
        def test_unit_skipped(): pytest.skip("not today")
        """,
    "tests/other/test_marked.py": """
        import pytest

        @pytest.mark.slow
        def test_joins_unit_by_marker(): pass
        """,
    "tests/integration/test_i.py": """
        def test_integration_fails(): assert 1 == 2, "integration broke"
        def test_integration_passes(): pass
        """,
    "tests/smoke/test_s.py": """
        def test_smoke_closed_by_integration(): pass
        """,
}

# Modules a worker running only ``tests`` gates has no use for.
NOT_ON_A_WORKER = (
    "pydantic",
    "pydantic_core",
    "pytest_release.config.release",  # reads and validates the TOML
    "pytest_release.config.tables",  # the pydantic models
    "pytest_release.stage.resolve",
    "pytest_release.gates.lint",
    "pytest_release.gates.canary",
    "pytest_release.canary",
    "pytest_release.controllers",
)


def _imported(root: Path, process: str) -> list[str]:
    modules: list[str] = json.loads((root / f"modules-{process}.json").read_text())
    return [
        m for m in modules if any(m == name or m.startswith(name + ".") for name in NOT_ON_A_WORKER)
    ]


def _outcomes(root: Path) -> tuple[Any, ...]:
    """The JUnit cases (sorted: workers finish in any order) and the ledger's record."""
    cases = sorted(
        (c.classname, c.name, c.file, c.line, c.outcome, c.message, c.properties.get("gate"))
        for c in read_cases(stage_report(root, "ci"))
    )
    (run,) = ledger_runs(root)
    gates = {
        name: {k: v for k, v in gate.items() if k != "duration"}
        for name, gate in run["gates"].items()
    }
    return cases, run["outcome"], run["message"], gates


def test_workers_do_not_validate_and_behave_as_before(pytester: pytest.Pytester) -> None:
    root = project(pytester, TOML, **FILES)
    serial = run_stage(pytester, "ci")
    serial.assert_outcomes(passed=4, failed=1, skipped=2)
    expected = _outcomes(root)
    (root / ".pytest-release" / "ledger.json").unlink()

    # The controller validates (no plan cache): its workers still do not
    # (tests/test_plan_cache.py: from the cache, no process validates).
    result = run_stage(pytester, "ci", "-n", "2", "--release-plan-cache=off")
    result.assert_outcomes(passed=4, failed=1, skipped=2)
    workers = sorted(p.name for p in root.glob("modules-gw*.json"))
    assert workers == ["modules-gw0.json", "modules-gw1.json"], result.stdout.str()
    for worker in ("gw0", "gw1"):
        assert _imported(root, worker) == [], f"worker {worker} imported them"
    # The controller did validate (the check above would see nothing if no process did).
    assert "pydantic" in _imported(root, "controller")
    assert "pytest_release.config.release" in _imported(root, "controller")
    assert _outcomes(root) == expected


def test_a_third_party_gate_kind_reaches_the_workers_as_validated(
    pytester: pytest.Pytester,
) -> None:
    # The gate's table travels pickled; its model (defined in the project's conftest) is
    # unpickled on the worker where the gate kind's hook reads it, with its values.
    project(
        pytester,
        """
        [stages.files]
        gates = ["check-files"]
        [gates.check-files]
        kind = "file-check"
        required = ["README.md", "LICENSE"]
        """,
        **{
            "README.md": "read me\n",
            "conftest.py": file_check_conftest(),
        },
    )
    result = run_stage(pytester, "files", "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*LICENSE is missing (on gw*)*"])

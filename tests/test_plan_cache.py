"""A stage whose configuration, pytest-release and installed packages did not change since
a stage validated them runs from the cached plan (``.pytest-release/plans/``): it imports
no pydantic, and it behaves exactly as a stage that validated (issue 27, start-up)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_release.config import plan_cache
from tests.support.gate_kinds import file_check_conftest
from tests.support.junit import read_cases, stage_report
from tests.support.spine import XDIST_MODES, assert_usage_error, ledger_runs, project, run_stage

# Gates of kinds the stage does not run are configured (a lint table, a canary platform,
# an environment): the first stage validates them all, the next one reads its plan.
TOML = """
[stages.ci]
gates = ["unit", "integration"]
[stages.staging-ci]
gates = ["unit"]
target = "staging"
[gates.unit]
markers = ["slow"]
paths = ["tests/unit/*"]
coverage = { fail_under = 100, source = ["shop"] }
[gates.integration]
paths = ["tests/integration/*"]
allow_empty = true
[gates.lint]
kind = "lint"
tools = ["ruff-check"]
[gates.canary.platform]
type = "local-process"
command = ["python3", "-c", "pass", "{port}"]
stable_image = "v1"
[environments.staging]
env = { SHOP_ENVIRONMENT = "staging" }
[environments.staging.gates.unit]
paths = ["tests/staging/*"]
coverage = { fail_under = 10, source = ["shop"] }
"""

FILES = {
    "conftest.py": """
        import json, sys

        def pytest_sessionfinish(session):
            worker = getattr(session.config, "workerinput", {}).get("workerid", "controller")
            with open(f"modules-{worker}.json", "w") as out:
                json.dump(sorted(sys.modules), out)
        """,
    "shop/__init__.py": "",
    "shop/prices.py": """
        def price(n):
            if n < 0:
                return 0  # not covered: the unit gate's coverage (100) fails
            return n * 2
        """,
    "tests/unit/test_u.py": """
        import pytest
        from shop.prices import price

        def test_price(): assert price(2) == 4
        def test_fails(): assert price(1) == 3, "price is off"
        def test_skipped(): pytest.skip("not today")
        """,
    "tests/other/test_marked.py": """
        import pytest

        @pytest.mark.slow
        def test_joins_unit_by_marker(): pass
        """,
    "tests/staging/test_st.py": """
        import os
        from shop.prices import price

        def test_runs_on_staging():
            assert os.environ["SHOP_ENVIRONMENT"] == "staging"
            assert price(1) == 2
        """,
}

VALIDATION = ("pydantic", "pytest_release.config.release", "pytest_release.config.tables")


def _validation_modules(root: Path, process: str = "controller") -> list[str]:
    modules: list[str] = json.loads((root / f"modules-{process}.json").read_text())
    return [m for m in modules if any(m == v or m.startswith(v + ".") for v in VALIDATION)]


def _entries(root: Path) -> list[Path]:
    return sorted((root / ".pytest-release" / "plans").glob("*.json"))


def _outcome(root: Path, stage: str) -> tuple[Any, ...]:
    """The stage's JUnit cases and its latest ledger record, without times."""
    cases = sorted(
        (c.classname, c.name, c.outcome, c.message, c.properties.get("gate"))
        for c in read_cases(stage_report(root, stage))
    )
    run = [r for r in ledger_runs(root) if r["stage"] == stage][-1]
    gates = {
        name: {k: v for k, v in gate.items() if k != "duration"}
        for name, gate in run["gates"].items()
    }
    return cases, run["outcome"], run["message"], gates


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_a_second_stage_runs_from_the_plan_without_pydantic_and_alike(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    root = project(pytester, TOML, **FILES)
    first = run_stage(pytester, "ci", *xdist)
    first.assert_outcomes(passed=2, failed=2, skipped=1)  # the coverage check fails too
    assert "pydantic" in _validation_modules(root)  # the first stage validated
    (entry,) = _entries(root)
    validated = _outcome(root, "ci")
    written = entry.stat()

    second = run_stage(pytester, "ci", *xdist, release="r2")
    second.assert_outcomes(passed=2, failed=2, skipped=1)
    processes = ["controller", "gw0", "gw1"] if xdist else ["controller"]
    for process in processes:
        assert _validation_modules(root, process) == [], process
    assert _outcome(root, "ci") == validated
    assert _entries(root) == [entry]
    # The entry said all the second stage needed: it was not written again (a write
    # replaces the file: another inode).
    unchanged = entry.stat()
    assert (unchanged.st_ino, unchanged.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_an_environment_stage_runs_from_the_plan_with_its_settings(
    pytester: pytest.Pytester,
) -> None:
    # The first stage (ci) read the production gates; staging-ci reads the environment's
    # (other paths, another coverage threshold, its variables): it validates what the
    # entry lacks once, then the entry has it too.
    root = project(pytester, TOML, **FILES)
    run_stage(pytester, "ci")
    for release in ("r1", "r2"):
        result = run_stage(pytester, "staging-ci", release=release)
        # The marked test, the staging test and the coverage check (its own threshold, 10).
        result.assert_outcomes(passed=3)
        cases = {c.name: c.outcome for c in read_cases(stage_report(root, "staging-ci"))}
        assert cases == {
            "test_joins_unit_by_marker": "passed",
            "test_runs_on_staging": "passed",
            "coverage": "passed",
        }
    assert _validation_modules(root) == []  # the second staging-ci read the plan


def test_a_changed_configuration_is_validated_again_with_the_same_message(
    pytester: pytest.Pytester,
) -> None:
    root = project(pytester, TOML, **FILES)
    run_stage(pytester, "ci").assert_outcomes(passed=2, failed=2, skipped=1)
    pyproject = root / "pyproject.toml"
    # A gate the stage does not run breaks: the next stage is refused all the same.
    pyproject.write_text(
        pyproject.read_text().replace('tools = ["ruff-check"]', 'tools = ["ruff-check"]\nspeed = 3')
    )
    expected = "*gates.lint.speed: unknown key (value 3); check the spelling*"
    assert_usage_error(run_stage(pytester, "ci", release="r2"), expected)
    assert_usage_error(
        run_stage(pytester, "ci", "--release-plan-cache=off", release="r2"), expected
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="corrupt"),
        pytest.param('{"format": 999}', id="other-format"),
        pytest.param('{"format": 1, "key": "%s", "stages": 5}', id="wrong-shape"),
    ],
)
def test_an_unusable_entry_is_a_miss_and_is_replaced(
    pytester: pytest.Pytester, content: str
) -> None:
    root = project(pytester, TOML, **FILES)
    run_stage(pytester, "ci").assert_outcomes(passed=2, failed=2, skipped=1)
    (entry,) = _entries(root)
    good = entry.read_text()
    entry.write_text(content.replace("%s", entry.stem))
    run_stage(pytester, "ci", release="r2").assert_outcomes(passed=2, failed=2, skipped=1)
    assert "pydantic" in _validation_modules(root)
    assert entry.read_text() == good


def test_an_unwritable_cache_is_no_error(pytester: pytest.Pytester) -> None:
    root = project(pytester, TOML, **FILES)
    (root / ".pytest-release").mkdir()
    (root / ".pytest-release" / "plans").write_text("a file, not a directory\n")
    for release in ("r1", "r2"):
        run_stage(pytester, "ci", release=release).assert_outcomes(passed=2, failed=2, skipped=1)
        assert "pydantic" in _validation_modules(root)


def test_off_always_validates_and_a_bad_value_is_refused(pytester: pytest.Pytester) -> None:
    root = project(pytester, TOML, **FILES)
    for release in ("r1", "r2"):
        run_stage(pytester, "ci", "--release-plan-cache=off", release=release)
        assert "pydantic" in _validation_modules(root)
    assert _entries(root) == []
    assert_usage_error(
        run_stage(pytester, "ci", "--release-plan-cache=maybe"),
        "*--release-plan-cache='maybe': unknown value; allowed: on, off*",
    )


def test_a_plugin_gate_kind_turns_the_cache_off(pytester: pytest.Pytester) -> None:
    # Its model is not part of the key: a change to it must be validated.
    root = project(
        pytester,
        """
        [stages.files]
        gates = ["check-files"]
        [gates.check-files]
        kind = "file-check"
        required = ["README.md"]
        """,
        **{
            "README.md": "read me\n",
            "conftest.py": file_check_conftest(),
        },
    )
    for release in ("r1", "r2"):
        run_stage(pytester, "files", release=release).assert_outcomes(passed=1)
    assert _entries(root) == []


# -- the key ------------------------------------------------------------------------------


def _key(table: dict[str, Any] | None = None, source: str = "pyproject.toml") -> str:
    return plan_cache.configuration_key(table or {"stages": {"ci": {"gates": ["unit"]}}}, source)


def test_the_key_follows_the_configuration_and_its_source() -> None:
    assert _key() == _key()
    assert _key({"stages": {"ci": {"gates": ["unit", "lint"]}}}) != _key()
    assert _key(source="release.toml") != _key()


def test_the_key_follows_pytest_releases_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pytest_release"
    (package / "config").mkdir(parents=True)
    module = package / "config" / "tables.py"
    module.write_text("A = 1\n")
    monkeypatch.setattr(plan_cache, "PACKAGE_DIR", package)
    before = _key()
    module.write_text("A = 22\n")  # another size
    assert _key() != before
    changed = _key()
    (package / "config" / "new.py").write_text("")
    assert _key() != changed


def test_the_key_follows_the_installed_distributions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"
    (site / "pydantic-2.11.0.dist-info").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    before = _key()
    (site / "pydantic-2.11.0.dist-info").rename(site / "pydantic-2.12.0.dist-info")
    assert _key() != before

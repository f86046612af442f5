"""Release configuration: defaults, validation errors, overrides, option precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_release.config.plan import build_plan
from pytest_release.config.release import load_release_config
from pytest_release.config.tables import GateConfig
from pytest_release.config.types import parse_duration
from pytest_release.errors import ReleaseConfigError
from pytest_release.gates import builtin_gate_kinds
from tests.support.pipelines import UNIT_TEST
from tests.support.spine import assert_usage_error, project, run_ci_with_github_sha, run_stage

KINDS: dict[str, type[GateConfig]] = builtin_gate_kinds()

# Stage runs below use a stage of plain test gates, so no gate tool (lint, docker) runs.
CI_STAGE = "[stages.ci]\ngates = ['unit']\n"


def test_empty_table_gives_the_builtin_stages() -> None:
    config = load_release_config({}, "pyproject.toml", KINDS)
    assert list(config.stages) == [
        "uat",
        "build",
        "canary-1",
        "canary-2",
        "canary-3",
        "smoke",
        "rollback",
    ]
    assert config.stages["canary-1"].requires == ("build",)
    rollout = config.stages["canary-2"].rollout
    assert rollout is not None
    assert (rollout.replicas, rollout.weight, rollout.hold) == (2, 50, 1800.0)
    assert build_plan(config, "uat").order[:2] == ("lint", "unit")


def test_user_tables_override_defaults_key_by_key() -> None:
    config = load_release_config(
        {
            "stages": {"uat": {"gates": ["unit"]}, "perf": {"gates": ["load"]}},
            "gates": {"load": {"paths": ["perf/*"]}},
        },
        "pyproject.toml",
        KINDS,
    )
    assert config.stages["uat"].gates == ("unit",)
    assert config.stages["uat"].description.startswith("User acceptance")
    assert config.stages["perf"].gates == ("load",)
    assert config.gates["load"].paths == ("perf/*",)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"stages": {"uat": {"gatez": ["unit"]}}},
            "stages.uat.gatez: unknown key (value ['unit']); check the spelling",
        ),
        ({"reports_dirr": "x"}, "reports_dirr: unknown key (value 'x')"),
        (
            {"stages": {"canary-1": {"rollout": {"weight": 150}}}},
            "stages.canary-1.rollout.weight = 150: Input should be less than or equal to 100",
        ),
        (
            {"stages": {"canary-1": {"rollout": {"hold": "soon"}}}},
            "stages.canary-1.rollout.hold = 'soon': Value error, expected a duration",
        ),
        (
            {"stages": {"uat": {"gates": ["unit", "nope"]}}},
            "stages.uat.gates: unknown gate 'nope'; gates: lint, unit",
        ),
        (
            {"stages": {"uat": {"requires": ["ghost"]}}},
            "stages.uat.requires: unknown stage 'ghost'; stages: uat, build",
        ),
        (
            {"gates": {"unit": {"kind": "magic"}}},
            "gates.unit.kind = 'magic': unknown gate kind; allowed: ",
        ),
        ({"gates": {"unit": {"after": ["ghost"]}}}, "gates.unit.after: unknown gate 'ghost'"),
        ({"gates": {"unit": {"pathz": []}}}, "gates.unit.pathz: unknown key"),
        ({"stages": {"Bad Name": {}}}, "stages.Bad Name: invalid stage name"),
    ],
)
def test_errors_name_file_key_value_and_what_is_allowed(
    table: dict[str, object], expected: str
) -> None:
    with pytest.raises(ReleaseConfigError) as excinfo:
        load_release_config(table, "/repo/pyproject.toml", KINDS)
    message = str(excinfo.value)
    assert message.startswith("invalid release configuration in /repo/pyproject.toml")
    assert expected in message


def test_after_cycle_is_reported() -> None:
    config = load_release_config(
        {
            "gates": {"a": {"after": ["b"]}, "b": {"after": ["a"]}},
            "stages": {"loop": {"gates": ["a", "b"]}},
        },
        "p.toml",
        KINDS,
    )
    with pytest.raises(ReleaseConfigError, match="gates a, b form a cycle"):
        build_plan(config, "loop")


def test_gates_without_after_form_a_sequence_and_after_makes_a_dag() -> None:
    config = load_release_config(
        {
            "gates": {"x": {"after": []}, "y": {}, "z": {"after": ["x"]}},
            "stages": {"s": {"gates": ["x", "y", "z"]}},
        },
        "p.toml",
        KINDS,
    )
    plan = build_plan(config, "s")
    assert plan.depends_on == {"x": (), "y": ("x",), "z": ("x",)}
    assert plan.upstream("z") == ("x",)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("1.5h", 5400.0), ("250ms", 0.25)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0.0), ("1ms", 0.001), ("720h", 2592000.0), (2592000, 2592000.0)],
    ids=["zero", "shortest", "longest-in-hours", "longest-in-seconds"],
)
def test_durations_within_the_range_are_accepted(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (2592000.5, "2592000.5 is too long"),
        ("721h", "'721h' is too long"),
        (1e308, "1e+308 is too long"),
        (0.0009, "0.0009 is too short"),
        (1e-300, "1e-300 is too short"),
    ],
)
def test_durations_outside_the_range_name_the_range(value: object, problem: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_duration(value)
    assert str(excinfo.value) == f"{problem}: a duration is 0 or from 1ms to 30 days (2592000s)"


def test_unknown_stage_lists_configured_stages(pytester: pytest.Pytester) -> None:
    project(pytester, "[stages.perf]\ngates = ['unit']\n")
    result = run_stage(pytester, "canary-9")
    assert_usage_error(
        result,
        "ERROR: unknown stage 'canary-9'; stages in */pyproject.toml: uat, build, "
        "canary-1, canary-2, canary-3, smoke, rollback, perf",
    )


def test_invalid_config_is_a_usage_error_at_startup(pytester: pytest.Pytester) -> None:
    project(pytester, "[stages.uat]\ngatez = ['unit']\n")
    result = run_stage(pytester, "uat")
    assert_usage_error(
        result, "ERROR: invalid release configuration in */pyproject.toml:", "*stages.uat.gatez*"
    )


def test_release_config_file_option(pytester: pytest.Pytester) -> None:
    project(pytester, "", **{"tests/test_a.py": "def test_a(): pass\n"})
    (pytester.path / "release.toml").write_text(
        '[gates.mine]\npaths = ["tests/*"]\n[stages.custom]\ngates = ["mine"]\n'
    )
    result = run_stage(pytester, "custom", "--release-config=release.toml")
    result.assert_outcomes(passed=1)
    missing = run_stage(pytester, "custom", "--release-config=nope.toml")
    assert_usage_error(missing, "*nope.toml does not exist; pass an existing TOML file*")


def test_cli_beats_ini_beats_config_for_reports_dir(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        'reports_dir = "from-config"\n' + CI_STAGE,
        **UNIT_TEST,
    )
    run_stage(pytester, "ci").assert_outcomes(passed=1)
    assert (pytester.path / "from-config" / "ci.xml").is_file()

    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.pytest.ini_options]\n",
            '[tool.pytest.ini_options]\nrelease_reports_dir = "from-ini"\n',
        )
    )
    run_stage(pytester, "ci", release="r2").assert_outcomes(passed=1)
    assert (pytester.path / "from-ini" / "ci.xml").is_file()

    run_stage(pytester, "ci", "--reports-dir=from-cli", release="r3").assert_outcomes(passed=1)
    assert (pytester.path / "from-cli" / "ci.xml").is_file()


def test_release_id_from_github_sha_then_git_then_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_ci_with_github_sha(pytester, monkeypatch, "abc123")
    result.stdout.fnmatch_lines(["release id: abc123"])

    monkeypatch.delenv("GITHUB_SHA")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(pytester.path.parent))
    result = pytester.runpytest_subprocess("--stage=ci", "-p", "no:cacheprovider")
    assert_usage_error(result, "*cannot determine the release id*pass --release-id=ID*")

    pytester.run("git", "init", "-q")
    pytester.run(
        "git",
        "-c",
        "user.email=a@b",
        "-c",
        "user.name=a",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    head = pytester.run("git", "rev-parse", "HEAD").stdout.str().strip()
    result = pytester.runpytest_subprocess("--stage=ci", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"release id: {head}"])


def test_header_names_stage_release_and_image(pytester: pytest.Pytester) -> None:
    project(pytester, CI_STAGE, **UNIT_TEST)
    result = run_stage(pytester, "ci", "--image=ghcr.io/acme/shop:release-42")
    result.stdout.fnmatch_lines(
        [
            "release stage: ci (gates: unit)",
            "release id: r1",
            "image: ghcr.io/acme/shop:release-42",
        ]
    )


def test_ini_default_for_image(pytester: pytest.Pytester, tmp_path: Path) -> None:
    project(pytester, CI_STAGE, **UNIT_TEST)
    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.pytest.ini_options]\n", '[tool.pytest.ini_options]\nrelease_image = "shop:ini"\n'
        )
    )
    run_stage(pytester, "ci").stdout.fnmatch_lines(["image: shop:ini"])
    run_stage(pytester, "ci", "--image=shop:cli", release="r2").stdout.fnmatch_lines(
        ["image: shop:cli"]
    )


def test_release_config_files_layer(pytester: pytest.Pytester) -> None:
    project(pytester, "", **{"tests/a/test_a.py": "def test_a(): pass\n"})
    (pytester.path / "base.toml").write_text(
        '[gates.mine]\npaths = ["tests/a/*"]\n'
        '[stages.roll]\ngates = ["mine"]\n'
        'rollout = { replicas = 2, weight = 50, hold = "30m" }\n'
    )
    (pytester.path / "demo.toml").write_text('[stages.roll.rollout]\nhold = "5s"\n')
    result = pytester.runpytest_subprocess(
        "--stage=roll",
        "--release-id=r1",
        "--release-config=base.toml",
        "--release-config=demo.toml",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    from pytest_release.config.release import merge_layers

    merged = merge_layers(
        [
            {"stages": {"roll": {"rollout": {"replicas": 2, "hold": "30m"}}}},
            {"stages": {"roll": {"rollout": {"hold": "5s"}}}},
        ]
    )
    assert merged == {"stages": {"roll": {"rollout": {"replicas": 2, "hold": "5s"}}}}
    bad = pytester.runpytest_subprocess(
        "--stage=roll",
        "--release-id=r2",
        "--release-config=base.toml",
        "--release-config=typo.toml",
        "-p",
        "no:cacheprovider",
    )
    assert_usage_error(bad, "*typo.toml does not exist*")

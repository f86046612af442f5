"""The generated workflow is data written by a YAML library: whatever a description, a
name, an image, an environment value or the pytest arguments hold, the file reads back as
exactly the workflow the generator meant (issue 26, defect 1), and names GitHub cannot
take are refused with a clear error.  The action it uses is pinned (defect 3), secrets
reach only the steps that need them (defect 7), and the action passes only the
``--release-*`` option names (defect 2)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_release.config.options import ALIASED
from pytest_release.workflow import file as workflow_file
from pytest_release.workflow import workflow
from tests.workflow_support import (
    ROOT,
    WORKFLOW,
    actionlint,
    load_yaml,
    run_action_stage_script,
    stage_step,
)

# Scalars that a hand-made YAML writer gets wrong: indicators, comments, anchors, aliases,
# tags, mapping and flow syntax, quotes, YAML 1.1 booleans and numbers, expressions, and
# every kind of line break.
HOSTILE = [
    "plain",
    "",
    " leading space",
    "trailing space ",
    "has: colon space",
    "ends with colon:",
    "a #comment",
    "#starts with hash",
    "&anchor value",
    "*alias",
    "!tag value",
    "!!python/object:os.system",
    "%directive",
    "@at",
    "`backtick",
    "'single quoted'",
    '"double quoted"',
    "it's",
    'say "hi"',
    "[flow, list]",
    "{flow: map}",
    "- dash item",
    "-",
    "?",
    "? key",
    "|",
    ">",
    "yes",
    "No",
    "on",
    "off",
    "true",
    "null",
    "~",
    "0x1F",
    "012",
    "1e3",
    "3.14",
    ".inf",
    "2026-12-06",
    "${{ secrets.GITHUB_TOKEN }}",
    "${{ github.event.head_commit.message }}: x",
    "key: value # comment",
    "tab\tinside",
    "unicode ✓ ü 漢字",
    "back\\slash",
]
LINE_BREAKS = [
    "line one\npermissions: write-all",
    "first\n  evil:\n    runs-on: ubuntu-latest",
    "cr\rbreak",
    "crlf\r\nbreak",
    "next-line\x85char",
    "line\u2028separator",
    "para\u2029separator",
    "bell\x07and\x1bescape",
    "bom\ufeffinside",
    "description\n\njobs:\n  injected:\n    runs-on: ubuntu-latest\n"
    "    steps:\n      - run: curl evil",
]


def _config(tmp_path: Path, toml: str) -> Any:
    (tmp_path / "release.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    return workflow.load(["release.toml"], tmp_path)


def _read(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string (with \u escapes)


@pytest.mark.parametrize("path", [WORKFLOW, ROOT / ".github/workflows/release-cloud-run.yml"])
def test_committed_workflows_read_back_as_the_generators_data(path: Path) -> None:
    argv = workflow_file.recorded_argv(path.read_text(encoding="utf-8"))
    args = workflow_file.parser().parse_args(argv)
    config = workflow.load(args.release_config, ROOT)
    data = workflow.workflow_data(config, workflow_file.options_from(args))
    assert _read(path.read_text(encoding="utf-8")) == data


@pytest.mark.parametrize("value", HOSTILE + LINE_BREAKS, ids=repr)
def test_a_hostile_description_stays_a_comment(tmp_path: Path, value: str) -> None:
    config = _config(
        tmp_path,
        f"""
        [stages.uat]
        description = {_toml_string(value)}
        """,
    )
    options = workflow.Options(release_configs=("release.toml",), action="./")
    text = workflow_file.render(config, options)
    data = _read(text)
    assert data == workflow.workflow_data(config, options)
    assert list(data) == ["name", "on", "concurrency", "permissions", "env", "jobs"]
    assert data["permissions"] == {"contents": "read", "checks": "write"}
    assert list(data["jobs"]) == list(config.stages)


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_option_values_round_trip(tmp_path: Path, value: str) -> None:
    config = _config(tmp_path, "[stages.uat]\n")
    options = workflow.Options(
        release_configs=("release.toml",),
        pytest_args=value,
        install=value,
        action="./",
        image=value,
        python_version=value,
        branch=value,
        name=value,
        stage_env=(("uat", "SHOP_URL", value), ("smoke", "OTHER", value)),
    )
    text = workflow_file.render(config, options)
    data = _read(text)
    assert data == workflow.workflow_data(config, options)
    assert data["name"] == value
    assert data["env"] == {"IMAGE": value}
    assert data["on"]["push"]["branches"] == [value]
    assert data["jobs"]["uat"]["env"] == {"SHOP_URL": value}
    with_ = stage_step(data["jobs"]["uat"])["with"]
    if value:
        assert with_["pytest-args"] == value
    assert with_["install"] == value
    # The header records the arguments: they regenerate the same file.
    assert workflow_file.generate(workflow_file.recorded_argv(text), tmp_path) == text


@pytest.mark.parametrize("value", LINE_BREAKS, ids=repr)
def test_an_option_value_with_a_line_break_is_refused(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "release.toml").write_text("[stages.uat]\n")
    argv = ["--release-config=release.toml", "--action=./", f"--pytest-args={value}"]
    assert workflow_file.main(argv, tmp_path) == 2
    err = capsys.readouterr().err
    assert "holds a line break or control character" in err
    assert repr(value) in err


def test_hostile_descriptions_passactionlint(tmp_path: Path) -> None:
    stages = "".join(
        f'[stages.s{i}]\ngates = ["unit"]\ndescription = {_toml_string(v)}\n'
        for i, v in enumerate(HOSTILE + LINE_BREAKS)
    )
    (tmp_path / "release.toml").write_text(stages)
    out = tmp_path / ".github" / "workflows" / "release.yml"
    assert (
        workflow_file.main(["--release-config=release.toml", "--action=./", f"-o={out}"], tmp_path)
        == 0
    )
    done = actionlint(out)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("stage", ["1st", "v1.2", "canary.2"])
def test_a_stage_name_github_cannot_take_as_job_id_is_a_clear_error(
    tmp_path: Path, stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "release.toml").write_text(f'[stages."{stage}"]\ngates = ["unit"]\n')
    assert workflow_file.main(["--release-config=release.toml", "--action=./"], tmp_path) == 2
    err = capsys.readouterr().err
    assert f"stage name(s) {stage!r} cannot be GitHub Actions job ids" in err
    assert "rename the stage" in err


def test_stage_env_of_an_unknown_stage_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "release.toml").write_text("[stages.uat]\n")
    argv = ["--release-config=release.toml", "--action=./", "--stage-env=smoek:URL=x"]
    assert workflow_file.main(argv, tmp_path) == 2
    err = capsys.readouterr().err
    assert "--stage-env names stage(s) 'smoek', which are not configured" in err
    assert "smoke" in err  # the configured stages are listed


# -- defect 3: the action is pinned to this version's tag ---------------------------------
def test_the_action_is_pinned_to_the_tag_of_this_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    (tmp_path / "release.toml").write_text("[stages.uat]\n")
    data = _read(workflow_file.generate(["--release-config=release.toml"], tmp_path))
    uses = {stage_step(job)["uses"] for job in data["jobs"].values()}
    assert uses == {f"pytest-release/pytest-release@v{version('pytest-release')}"}
    assert workflow.default_action("1.4.2") == "pytest-release/pytest-release@v1.4.2"


@pytest.mark.parametrize("version", ["0.2.0.dev3", "0.1.0+g1234abc", "1.0rc1"])
def test_an_unreleased_version_asks_for_an_explicit_action(version: str) -> None:
    with pytest.raises(workflow.WorkflowError) as error:
        workflow.default_action(version)
    assert f"pytest-release {version} is not a released version" in str(error.value)
    assert "pass --action=pytest-release/pytest-release@<tag or commit sha>" in str(error.value)


# -- defect 7: secrets reach the steps that need them ---------------------------------------
def _secret_places(data: dict[str, Any]) -> dict[str, list[str]]:
    """Where each ``${{ secrets.X }}`` sits: 'workflow', '<job>', '<job>/<step name>'."""
    places: dict[str, list[str]] = {}

    def note(where: str, mapping: dict[str, Any]) -> None:
        for value in mapping.values():
            if isinstance(value, str) and "secrets." in value:
                places.setdefault(value, []).append(where)

    note("workflow", data.get("env", {}))
    for name, job in data["jobs"].items():
        note(name, job.get("env", {}))
        for step in job["steps"]:
            note(f"{name}/{step.get('name', step.get('uses'))}", step.get("env", {}))
    return places


def test_the_slack_webhook_is_scoped_to_the_steps_of_the_stages_that_notify(
    tmp_path: Path,
) -> None:
    config = _config(
        tmp_path,
        """
        secrets = ["SLACK_WEBHOOK_URL", "API_TOKEN"]
        [gates.canary.slack]
        webhook_env = "SLACK_WEBHOOK_URL"
        """,
    )
    data = workflow.workflow_data(config, workflow.Options(action="./"))
    places = _secret_places(data)
    canary_stages = [
        s
        for s in config.stages
        if any(config.for_stage(s).gates[g].kind == "canary" for g in config.stage(s).gates)
    ]
    assert canary_stages  # the built-in canary-1..3
    assert sorted(places["${{ secrets.SLACK_WEBHOOK_URL }}"]) == sorted(
        f"{s}/Stage {s}" for s in canary_stages
    )
    # A secret whose user is not known here goes to every stage's step, never wider.
    assert sorted(places["${{ secrets.API_TOKEN }}"]) == sorted(
        f"{s}/Stage {s}" for s in config.stages
    )
    assert "SLACK_WEBHOOK_URL" not in data["env"]


def test_the_committed_workflow_has_no_workflow_wide_secret() -> None:
    data = load_yaml(WORKFLOW)
    for value, where in _secret_places(data).items():
        assert "workflow" not in where, value
        assert all("/" in w for w in where), (value, where)  # step level only


# -- defect 2: the action passes only the --release-* names ---------------------------------
def test_the_action_command_works_with_a_conftest_defining_every_short_alias(
    pytester: pytest.Pytester,
) -> None:
    aliases = [option.alias for option in ALIASED if option.alias]
    assert {"--image", "--reports-dir", "--ledger"} <= set(aliases)
    pytester.makepyprojecttoml("[tool.pytest-release.stages.ci]\ngates = ['unit']\n")
    adds = "".join(
        f"    parser.addoption({alias!r}, dest={'suite_' + alias.strip('-').replace('-', '_')!r})\n"
        for alias in aliases
    )
    pytester.makeconftest(
        "def pytest_addoption(parser):\n" + adds + "\n"
        "def pytest_configure(config):\n"
        "    import json, os\n"
        "    seen = {a: config.getoption('suite_' + a.strip('-').replace('-', '_'))\n"
        f"            for a in {aliases!r}}}\n"
        "    open(os.environ['SEEN'], 'w').write(json.dumps(seen))\n"
    )
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    (pytester.path / "tests" / "unit" / "test_a.py").write_text("def test_a():\n    pass\n")
    given = {
        "stage": "ci",
        "image": "Registry.example.com/Acme/Shop:v1",
        "reports-dir": str(pytester.path / "out" / "reports"),
        "ledger": str(pytester.path / "out" / "ledger.json"),
        "pytest-args": "-p no:cacheprovider --release-id=r1",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["SEEN"] = str(pytester.path / "seen.json")
    done = run_action_stage_script(given, pytester.path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    # The suite's own options received nothing of the action's.
    assert json.loads((pytester.path / "seen.json").read_text()) == dict.fromkeys(aliases)
    runs = json.loads((pytester.path / "out" / "ledger.json").read_text())["runs"]
    assert [(r["stage"], r["outcome"], r["image"]) for r in runs] == [
        ("ci", "passed", "registry.example.com/acme/shop:v1")
    ]
    assert (pytester.path / "out" / "reports" / "ci.xml").is_file()


# -- defect 5: one annotation per failure -----------------------------------------------------
def test_the_junit_check_run_adds_no_second_annotation_per_failure() -> None:
    """The stage prints one ``::error`` per failure (tests/test_reports.py); the check run
    of mikepenz/action-junit-report@v4 annotates every failure again unless
    ``check_annotations`` is false (its default is true, its action.yml at v4.3.1)."""
    from tests.workflow_support import ACTION

    [step] = [
        s
        for s in load_yaml(ACTION)["runs"]["steps"]
        if str(s.get("uses", "")).startswith("mikepenz/action-junit-report@")
    ]
    assert step["uses"] == "mikepenz/action-junit-report@v4"
    assert step["with"]["check_annotations"] == "false"
    assert step["with"].get("annotate_only", "false") == "false"  # would print them again

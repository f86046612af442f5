"""The GitHub Actions workflow: generated from the stages, current, and lint-clean.

The job walk is tests/test_workflow_walk.py; the collect equivalence with
scripts/pipeline.py is tests/test_workflow_collect.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_release.config.release import merge_layers
from pytest_release.gates.e2e.config import E2EGateConfig
from pytest_release.workflow import file as workflow_file
from pytest_release.workflow import shards, workflow
from tests.workflow_support import (
    ACTION,
    ROOT,
    WORKFLOW,
    actionlint,
    load_yaml,
    needs_order,
    required_tool,
    stage_step,
)

# The first pipeline (Kubernetes canary) and the second (staging, Cloud Run, seed 002).
CLOUD_RUN_WORKFLOW = ROOT / ".github" / "workflows" / "release-cloud-run.yml"
WORKFLOWS = [
    pytest.param(WORKFLOW, id="release.yml"),
    pytest.param(CLOUD_RUN_WORKFLOW, id="release-cloud-run.yml"),
]


@pytest.mark.parametrize("path", WORKFLOWS)
def test_committed_workflow_is_the_generators_output(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    argv = workflow_file.recorded_argv(text)
    assert text == workflow_file.generate(argv, ROOT), (
        f"{path.name} is stale: run `python -m pytest_release workflow --check "
        f".github/workflows/{path.name}` for the command that regenerates it"
    )


def load_yaml_text(text: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_cloud_run_workflow_authenticates_the_cloud_run_jobs_only() -> None:
    jobs = load_yaml(CLOUD_RUN_WORKFLOW)["jobs"]
    assert needs_order(jobs)[:4] == ["uat", "build", "staging", "canary-1"]
    assert [j for j in jobs if j.startswith("canary-")] == [
        "canary-1", "canary-2", "canary-3", "canary-4"
    ]  # fmt: skip
    for name, job in jobs.items():
        uses = [step.get("uses", "") for step in job["steps"]]
        on_cloud_run = name in (
            "staging",
            "canary-1",
            "canary-2",
            "canary-3",
            "canary-4",
            "rollback",
        )
        assert ("google-github-actions/auth@v2" in uses) == on_cloud_run, name
        if on_cloud_run:
            assert job["permissions"]["id-token"] == "write", name
            assert uses.index("google-github-actions/auth@v2") < len(uses) - 1  # before the stage
    # Without --install the jobs install pytest-release with the extras the stages need.
    argv = [
        a for a in workflow_file.recorded_argv(CLOUD_RUN_WORKFLOW.read_text()) if "install" not in a
    ]
    generated = load_yaml_text(workflow_file.generate(argv, ROOT))["jobs"]
    assert "cloud-run" in stage_step(generated["canary-1"])["with"]["install"]


def test_check_command_reports_a_stale_workflow(tmp_path: Path) -> None:
    stale = tmp_path / "release.yml"
    stale.write_text(
        WORKFLOW.read_text().replace("needs:\n      - canary-1\n", "needs:\n      - build\n")
    )
    command = [sys.executable, "-m", "pytest_release", "workflow", "--check"]
    done = subprocess.run(
        [*command, str(stale)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "is stale: regenerate it with" in done.stderr
    assert "--release-config=suites/release.toml" in done.stderr
    ok = subprocess.run(
        [*command, str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("path", WORKFLOWS)
def test_workflow_passes_actionlint_with_shellcheck(path: Path) -> None:
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_checks_run_scripts_with_shellcheck(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text()
    text = text.replace("needs:\n      - canary-2\n", "needs:\n      - canary-two\n", 1)
    text = text.replace("        run: npm install", "        run: cd $HOME && npm install", 1)
    broken.write_text(text)
    result = actionlint(broken)
    assert result.returncode == 1
    assert "canary-two" in result.stdout
    assert "SC2086" in result.stdout  # unquoted $HOME: shellcheck ran


def test_action_scripts_pass_shellcheck() -> None:
    """actionlint does not look into a composite action's scripts; shellcheck does."""
    shellcheck = required_tool("shellcheck", "SHELLCHECK", "apt-get install -y shellcheck")
    for step in load_yaml(ACTION)["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], f"{step['name']}: pass inputs through env"
            done = subprocess.run(
                [shellcheck, "-s", "bash", "-"],
                input=step["run"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{step['name']}:\n{done.stdout}"


def test_every_stage_is_a_job_using_the_action() -> None:
    data = load_yaml(WORKFLOW)
    config = workflow.load(["suites/release.toml", "suites/github.toml"], ROOT)
    assert list(data["jobs"]) == list(config.stages)
    for name, job in data["jobs"].items():
        assert stage_step(job)["with"]["stage"] == name
        if name != "rollback":
            assert job.get("needs", []) == list(config.stage(name).requires)
    assert data["jobs"]["canary-1"]["environment"] == "production"
    assert stage_step(data["jobs"]["canary-1"])["with"]["approved-via"] == "production"
    assert data["concurrency"]["cancel-in-progress"] is False
    # The Slack webhook only in the stage step of the jobs whose canary gate notifies.
    assert "SLACK_WEBHOOK_URL" not in data["env"]
    slack = "${{ secrets.SLACK_WEBHOOK_URL }}"
    notifying = [n for n, j in data["jobs"].items() if stage_step(j).get("env")]
    assert notifying == ["canary-1", "canary-2", "canary-3", "rollback", "staging"]
    for name in notifying:
        assert stage_step(data["jobs"][name])["env"] == {"SLACK_WEBHOOK_URL": slack}
    uat = stage_step(data["jobs"]["uat"])["with"]
    assert uat["playwright-browsers"] == "chromium"
    assert data["jobs"]["build"]["permissions"]["packages"] == "write"
    assert needs_order(data["jobs"])[-1] == "rollback"


def _render(tmp_path: Path, toml: str, *extra: str) -> dict[str, object]:
    (tmp_path / "release.toml").write_text(toml)
    argv = ["--release-config=release.toml", *extra]
    text = workflow_file.generate(argv, tmp_path)
    (tmp_path / "out.yml").write_text(text)
    return load_yaml(tmp_path / "out.yml")


def test_an_added_stage_becomes_a_job_with_its_needs_and_environment(tmp_path: Path) -> None:
    data = _render(
        tmp_path,
        '[stages.staging]\ngates = ["smoke"]\nrequires = ["build"]\nenvironment = "staging"\n'
        '[stages.canary-1]\nrequires = ["staging"]\n',
    )
    jobs = data["jobs"]
    assert isinstance(jobs, dict)
    assert jobs["staging"]["needs"] == ["build"]
    assert jobs["staging"]["environment"] == "staging"
    assert stage_step(jobs["staging"])["with"]["approved-via"] == "staging"
    assert stage_step(jobs["staging"])["with"]["ledger-from"] == "build"
    assert jobs["canary-1"]["needs"] == ["staging"]
    assert needs_order(jobs).index("staging") < needs_order(jobs).index("canary-1")
    # staging runs after a deployment?  No: it requires build only; rollback needs the rest.
    assert jobs["rollback"]["needs"] == ["canary-1", "canary-2", "canary-3", "smoke"]
    # No e2e/newman/docker configured here: the default install has the extras anyway.
    assert stage_step(jobs["uat"])["with"]["install"].startswith("pytest-release[")


def test_install_steps_follow_the_gate_kinds(tmp_path: Path) -> None:
    data = _render(
        tmp_path,
        '[stages.uat]\ngates = ["unit"]\n[stages.check]\ngates = ["newman", "e2e"]\n'
        '[gates.pub]\nkind = "docker"\npush = true\n[stages.pub]\ngates = ["pub"]\n',
        "--image=registry.example.com/shop:${{ github.sha }}",
    )
    jobs = data["jobs"]
    assert isinstance(jobs, dict)
    names = [s.get("name", s.get("uses")) for s in jobs["check"]["steps"]]
    assert "Install newman (gate kind newman)" in names
    assert stage_step(jobs["check"])["with"]["playwright-browsers"] == "chromium"
    assert "playwright-browsers" not in stage_step(jobs["uat"])["with"]
    login = next(s for s in jobs["pub"]["steps"] if s.get("uses") == "docker/login-action@v3")
    assert login["with"]["registry"] == "registry.example.com"
    assert login["with"]["password"] == "${{ secrets.REGISTRY_PASSWORD }}"
    assert stage_step(jobs["pub"])["with"]["image"] == "${{ env.IMAGE }}"


def test_generated_workflow_for_another_project_passesactionlint(tmp_path: Path) -> None:
    (tmp_path / "release.toml").write_text(
        '[stages.staging]\ngates = ["smoke"]\nrequires = ["build"]\nenvironment = "staging"\n'
    )
    out = tmp_path / ".github" / "workflows" / "release.yml"
    argv = ["--release-config=release.toml", f"--output={out}"]
    assert workflow_file.main(argv, tmp_path) == 0
    result = actionlint(out)
    assert result.returncode == 0, result.stdout


def test_generator_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "release.toml").write_text('[stages.x]\nrequires = ["nope"]\n')
    assert workflow_file.main(["--release-config=release.toml"], tmp_path) == 2
    err = capsys.readouterr().err
    assert "stages.x.requires: unknown stage 'nope'" in err
    with pytest.raises(SystemExit):
        workflow_file.parser().parse_args(["--stage-env=smoke"])


def test_main_module_lists_its_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_release"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "workflow" in done.stderr
    assert "merge-ledgers" in done.stderr


def test_merge_ledgers_unites_runs_by_run_id(tmp_path: Path) -> None:
    def doc(*runs: dict[str, object]) -> str:
        return json.dumps({"format": "pytest-release/ledger", "version": 1, "runs": list(runs)})

    a = {"run_id": "a", "release_id": "r", "stage": "uat", "outcome": "passed"}
    a |= {"started": "1", "finished": "2"}
    b_running = {"run_id": "b", "release_id": "r", "stage": "build", "outcome": "running"}
    b_running |= {"started": "3", "finished": None}
    b_done = {**b_running, "outcome": "passed", "finished": "4"}
    (tmp_path / "1.json").write_text(doc(a))
    (tmp_path / "2.json").write_text(doc(a, b_done))
    into = tmp_path / "out" / "ledger.json"
    into.parent.mkdir()
    into.write_text(doc(b_running))
    count = shards.merge_ledgers([tmp_path / "1.json", tmp_path / "2.json"], into)
    runs = json.loads(into.read_text())["runs"]
    assert count == 2
    assert [(r["run_id"], r["finished"]) for r in runs] == [("a", "2"), ("b", "4")]


def test_a_layer_that_switches_type_replaces_the_table() -> None:
    local = {"gates": {"canary": {"platform": {"type": "local-docker", "ready_timeout": "2m"}}}}
    cluster = {"gates": {"canary": {"platform": {"type": "kubernetes", "app": "shop"}}}}
    same = {"gates": {"canary": {"platform": {"type": "local-docker", "stable_image": "x"}}}}
    merged = merge_layers([local, cluster])
    assert merged["gates"]["canary"]["platform"] == {"type": "kubernetes", "app": "shop"}
    kept = merge_layers([local, same])["gates"]["canary"]["platform"]
    assert kept == {"type": "local-docker", "ready_timeout": "2m", "stable_image": "x"}


def test_the_github_profile_uses_playwrights_browser_and_a_public_base() -> None:
    local = workflow.load(["suites/release.toml"], ROOT)
    github = workflow.load(["suites/release.toml", "suites/github.toml"], ROOT)
    assert local.gates["e2e"].executable_path == "/usr/bin/chromium"  # type: ignore[attr-defined]
    assert github.gates["e2e"].executable_path is None  # type: ignore[attr-defined]
    assert E2EGateConfig(executable_path="").executable_path is None
    assert "BASE" not in local.gates["docker"].build_args  # type: ignore[attr-defined]
    assert github.gates["build"].build_args["BASE"].startswith("python:")  # type: ignore[attr-defined]
    assert github.gates["canary"].platform.type == "kubernetes"  # type: ignore[attr-defined]
    dockerfile = (ROOT / "examples" / "shop" / "Dockerfile").read_text()
    assert "ARG BASE=local/python:bookworm" in dockerfile

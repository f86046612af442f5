"""Every job of the workflow collects what scripts/pipeline.py runs for its stage.

The workflow's pytest command is the one the stage action's script builds from the
job's inputs (run here with bash, tests/workflow_support.py); the pipeline's is the one
``scripts/pipeline.py`` builds (its ``run_forwarding_signals`` is intercepted). Both run with
``--collect-only -q`` in this repository and a throw-away ledger. The two use different
profiles on purpose (suites/github.toml: public base image, Playwright's browser, a
Kubernetes cluster; suites/demo.toml: holds of seconds), so a canary stage's judged
intervals (``health@<time>``) differ in number; every other item must be the same.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.workflow_support import (
    ROOT,
    WORKFLOW,
    load_yaml,
    pipeline_script,
    run_action_stage_script,
    stage_step,
)

# scripts/pipeline.py passes -q and -p no:cacheprovider itself; the workflow adds them here.
COLLECT = ["--collect-only", "--override-requires=collect"]
HEALTH = re.compile(r"::health@\w+$")
JOBS = list(load_yaml(WORKFLOW)["jobs"])


def _pipeline_command(stage: str, tmp_path: Path) -> list[str]:
    """The command scripts/pipeline.py runs for ``stage`` (same configs as its main)."""
    pipeline = pipeline_script()
    seen: list[list[str]] = []

    def record_command(stage: str, command: list[str], *args: Any) -> int:
        seen.append(list(command))
        return 0

    # The script's own function that starts a stage (it forwards signals to it).
    pipeline.run_forwarding_signals = record_command
    configs = [
        ROOT / "suites" / "release.toml",
        ROOT / "suites" / "demo.toml",
        pipeline._overlay(tmp_path / "pipeline.toml", "canary-1", None),
    ]
    pipeline.run_stage(stage, "collect", "127.0.0.1:5000/shop:release-1", configs, tmp_path / "log")
    assert len(seen) == 1
    return seen[0]


def _workflow_command_output(job: str, tmp_path: Path) -> str:
    """Run the action's stage script with the job's inputs plus --collect-only."""
    given = {k: str(v) for k, v in stage_step(load_yaml(WORKFLOW)["jobs"][job])["with"].items()}
    if "image" in given:
        given["image"] = "ghcr.io/acme/shop:collect"
    given["pytest-args"] = " ".join(
        [given.get("pytest-args", ""), *COLLECT, "-q", "-p", "no:cacheprovider"]
    )
    given["ledger"] = str(tmp_path / "wf-ledger.json")
    given["reports-dir"] = str(tmp_path / "wf-reports")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    done = run_action_stage_script(given, ROOT, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _items(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line and not line.startswith("+ ")]


@pytest.mark.parametrize("job", JOBS)
def test_job_collects_what_the_pipeline_runs(job: str, tmp_path: Path) -> None:
    command = _pipeline_command(job, tmp_path)
    command += [*COLLECT, f"--ledger={tmp_path / 'p-ledger.json'}"]
    command += [f"--reports-dir={tmp_path / 'p-reports'}"]
    pipeline = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, env=_no_github()
    )
    assert pipeline.returncode == 0, pipeline.stdout + pipeline.stderr
    expected = _items(pipeline.stdout)
    got = _items(_workflow_command_output(job, tmp_path))
    assert expected, f"the pipeline collects nothing for {job}: {pipeline.stdout}"
    assert [i for i in got if not HEALTH.search(i)] == [i for i in expected if not HEALTH.search(i)]
    assert bool([i for i in got if HEALTH.search(i)]) == bool(
        [i for i in expected if HEALTH.search(i)]
    )


def test_suites_are_collected_in_every_job() -> None:
    """The regression of issue 15: without `suites` the uat job collected nothing of it."""
    for job in JOBS:
        assert stage_step(load_yaml(WORKFLOW)["jobs"][job])["with"]["pytest-args"] == "suites"


def _no_github() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}

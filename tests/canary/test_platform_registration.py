"""What the spine and the canary gate know of a platform comes from its registration, so a
third-party platform needs no edit of pytest-release: the pip extra and the CI
credentials the workflow generator gives its jobs, the router slots its replicas need
behind HAProxy, and what the teardown command ends of it.

The platform here is a registration only (``nomad``, a stand-in named as such: its
rollout is never built), installed as a distribution of its own on ``PYTHONPATH``; the
stages and the generator run in processes of their own, which find it through its entry
point like any plug-in."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.canary.plugin_support import distribution
from tests.support.spine import project, run_stage
from tests.workflow_support import load_yaml, stage_step

NOMAD = '''
"""A stand-in third-party platform: a registration only (its rollout is never built)."""

from __future__ import annotations

from typing import Literal

import json
import os
import signal
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pytest_release.canary.registry import PlatformPlugin


class NomadPlatformConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["nomad"] = "nomad"
    health_path: str = "/health"
    stable_image: str = "v1"
    stable_replicas: int = 1

    def deployment_claims(self) -> tuple[()]:
        return ()


def build_rollout(settings: object, rootdir: object) -> object:
    raise AssertionError("the stand-in platform is never run")


def end_kept(rootdir: Path, directory: Path) -> list[str]:
    """End the job process recorded in ``nomad.json`` (by its PID)."""
    state = directory / "nomad.json"
    if not state.exists():
        return []
    pid = json.loads(state.read_text())["pid"]
    os.kill(pid, signal.SIGTERM)
    state.unlink()
    return [f"platform nomad: ended job {pid}"]


PLATFORM = PlatformPlugin(
    config=NomadPlatformConfig,
    build_rollout="nomad_platform:build_rollout",
    routers=("haproxy",),
    router_hint="leave the router table out",
    extra="kubernetes",
    ci_credentials=("kubeconfig", "google"),
    teardown="nomad_platform:end_kept",
    state_files=("nomad.json",),
)
'''

STAGES = """
[stages.canary-1]
requires = []
rollout = { action = "canary", replicas = 1, weight = 10, hold = "2s", interval = "1s" }

[gates.canary]
paths = []
[gates.canary.platform]
type = "nomad"
stable_replicas = 2
[gates.canary.router]
slots = 2
"""


@pytest.fixture
def nomad_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in platform as an installed distribution, on the stages' PYTHONPATH."""
    site = distribution(
        tmp_path / "site",
        "nomad-platform",
        "pytest_release.platforms",
        "nomad = nomad_platform:PLATFORM",
        {"nomad_platform": NOMAD},
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


def test_the_workflow_gives_a_plugin_platforms_jobs_what_its_registration_names(
    nomad_site: Path, tmp_path: Path
) -> None:
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "release.toml").write_text(textwrap.dedent(STAGES))
    done = subprocess.run(
        [sys.executable, "-m", "pytest_release", "workflow", "--release-config=release.toml"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (project_dir / "out.yml").write_text(done.stdout)
    jobs = load_yaml(project_dir / "out.yml")["jobs"]
    canary = jobs["canary-1"]
    step = stage_step(canary)["with"]
    extras = step["install"].removeprefix("pytest-release[").removesuffix("]").split(",")
    assert "kubernetes" in extras, step["install"]
    assert step["kubeconfig"] == "${{ secrets.KUBECONFIG }}"
    assert [s for s in canary["steps"] if s.get("uses") == "google-github-actions/auth@v2"]
    # A job without the platform gets neither.
    uat = jobs["uat"]
    assert "kubeconfig" not in stage_step(uat)["with"]
    assert not [s for s in uat["steps"] if s.get("uses") == "google-github-actions/auth@v2"]


def test_too_few_router_slots_for_a_plugin_platforms_replicas_is_a_usage_error(
    pytester: pytest.Pytester, nomad_site: Path
) -> None:
    project(pytester, STAGES)
    result = run_stage(pytester, "canary-1", "--image=v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    lines = [line.strip() for line in result.stderr.lines if line.strip()]
    assert lines[-1] == (
        f"ERROR: gates.canary in {pytester.path / 'pyproject.toml'}: router.slots = 2 is too "
        "small: the stage routes 2 stable (platform.stable_replicas) + 1 canary "
        "(stages.canary-1.rollout.replicas) = 3 replicas; raise router.slots to at least 3 "
        "(at most 64) or use fewer replicas"
    ), lines
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_the_teardown_ends_what_a_plugin_platform_keeps_as_its_registration_says(
    nomad_site: Path, tmp_path: Path
) -> None:
    project_dir = tmp_path / "project"
    state_dir = project_dir / ".pytest-release" / "nomad-prod"
    state_dir.mkdir(parents=True)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (state_dir / "nomad.json").write_text(json.dumps({"pid": job.pid}))
        done = subprocess.run(
            [sys.executable, "-m", "pytest_release.canary.teardown", str(project_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [f"platform nomad: ended job {job.pid}"], done.stdout
        assert job.wait(timeout=60) == -signal.SIGTERM
        assert not (state_dir / "nomad.json").exists()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()

"""A small emulator of GitHub Actions for the generated workflow and action.yml.

It runs the ``run:`` scripts of the composite action (action.yml) with bash, the way a
runner does (``bash --noprofile --norc -eo pipefail``), with ``${{ inputs.* }}``,
``${{ runner.temp }}`` and the job's ``with:`` values substituted, and emulates the
rest: GitHub's environment files (``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``,
``GITHUB_ENV``) as temp files, ``upload-artifact``/``download-artifact`` of the ledger as
copies between per-job directories, and the jobs' ``needs:`` and ``if:``.  Steps that
install software (setup-python, pip, Playwright browsers) are not run: this machine's
virtualenv already has it.  Anything it does not know is an error, never skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
ACTION = ROOT / "action.yml"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
ROLLBACK_IF = "${{ failure() && contains(needs.*.result, 'failure') }}"
NOT_RUN_HERE = {"Set up Python", "Install pytest-release", "Install Playwright browsers"}
EMULATED_USES = {
    "actions/download-artifact@v4",
    "actions/upload-artifact@v4",
    "mikepenz/action-junit-report@v4",
}


def pipeline_script() -> Any:
    """``scripts/pipeline.py`` (CI's driver of the stages) loaded as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "release_pipeline_script", ROOT / "scripts" / "pipeline.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` run the way a runner runs a ``run:`` step: ``bash --noprofile --norc -eo
    pipefail``, its output read as text."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def required_tool(name: str, env: str, install: str) -> str:
    """The path of a tool the test needs; the test fails (not skips) saying how to get it."""
    import pytest

    found = os.environ.get(env) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {install} (or set {env}=/path/to/{name})")
    return found


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on ``path``, with shellcheck present (it checks the ``run:`` scripts)."""
    required_tool("shellcheck", "SHELLCHECK", "apt-get install -y shellcheck")
    binary = required_tool(
        "actionlint", "ACTIONLINT", "bash scripts/install-actionlint.sh, then put it on PATH"
    )
    return subprocess.run(
        [binary, "-no-color", str(path)], capture_output=True, text=True, check=False, cwd=ROOT
    )


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    return {("on" if key is True else key): value for key, value in data.items()}


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def needs_order(jobs: dict[str, dict[str, Any]]) -> list[str]:
    """Jobs in an order GitHub could run them one by one; ties in file order."""
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [n for n, j in jobs.items() if n not in done and set(needs_of(j)) <= set(done)]
        if not ready:
            raise AssertionError(f"needs: cycle or unknown job among {set(jobs) - set(done)}")
        done.append(ready[0])
    return done


def stage_step(job: dict[str, Any]) -> dict[str, Any]:
    """The job's step that uses the stage action."""
    found = [
        s
        for s in job["steps"]
        if s.get("uses") == "./" or str(s.get("uses")).startswith("pytest-release/pytest-release@")
    ]
    assert len(found) == 1, f"expected one step using the stage action, found {len(found)}"
    return found[0]


def run_action_stage_script(
    given: dict[str, str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the stage action's ``Stage`` script (the step with ``id: stage``) as a runner
    would, its ``${{ inputs.* }}`` env taken from ``given`` (else the input's default)."""
    return run_action_script("stage", given, cwd, env)


def run_action_script(
    step: str, given: dict[str, str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the action's ``run:`` step whose id or name is ``step``, likewise."""
    action = load_yaml(ACTION)
    script = next(s for s in action["runs"]["steps"] if step in (s.get("id"), s.get("name")))
    step_env = dict(env)
    for key, template in script["env"].items():
        step_env[key] = _inputs(template, given, action, cwd)
    step_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{step_env['PATH']}"
    return run_bash(script["run"], cwd, step_env)


@dataclass
class Context:
    """What ``${{ ... }}`` expressions of the workflow read."""

    github: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def evaluate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            scope, _, name = match.group(1).partition(".")
            table = {"github": self.github, "secrets": self.secrets, "vars": self.vars}
            if scope == "env":
                return self.env[name]
            if scope in table:
                return table[scope].get(name, "")  # unset secrets and variables are ""
            raise AssertionError(f"expression not emulated: {match.group(0)}")

        return EXPR.sub(one, str(text))


@dataclass
class StepRun:
    name: str
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


@dataclass
class JobRun:
    name: str
    result: str  # success | failure | skipped
    steps: list[StepRun] = field(default_factory=list)
    summary: str = ""

    def output(self) -> str:
        return "\n".join(s.stdout + s.stderr for s in self.steps)


class Runner:
    """Runs the jobs of a workflow on this machine, one fresh directory per job."""

    def __init__(
        self,
        workflow: dict[str, Any],
        context: Context,
        tmp: Path,
        *,
        extra_configs: tuple[str, ...] = (),
        inputs: dict[str, str] | None = None,
    ) -> None:
        self.workflow = workflow
        self.action = load_yaml(ACTION)
        self.context = context
        self.tmp = tmp
        self.artifacts = tmp / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.extra_configs = extra_configs
        self.extra_inputs = inputs or {}
        self.results: dict[str, JobRun] = {}

    # -- jobs --------------------------------------------------------------------------
    def walk(self) -> list[JobRun]:
        jobs = self.workflow["jobs"]
        return [self.run_job(name, jobs[name]) for name in needs_order(jobs)]

    def should_run(self, job: dict[str, Any]) -> bool:
        needs = [self.results[n] for n in needs_of(job)]
        condition = job.get("if")
        if condition is None:
            return all(n.result == "success" for n in needs)
        if condition != ROLLBACK_IF:
            raise AssertionError(f"job condition not emulated: {condition}")
        return self._ancestor_failed(job) and any(n.result == "failure" for n in needs)

    def _ancestor_failed(self, job: dict[str, Any]) -> bool:
        jobs = self.workflow["jobs"]
        seen, todo = set(), list(needs_of(job))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if self.results[name].result == "failure":
                return True
            todo += needs_of(jobs[name])
        return False

    def run_job(self, name: str, job: dict[str, Any]) -> JobRun:
        if not self.should_run(job):
            self.results[name] = JobRun(name, "skipped")
            return self.results[name]
        workdir = self.tmp / "jobs" / name
        workdir.mkdir(parents=True)
        files = {n: workdir / n.lower() for n in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
        env_file = workdir / "github_env"
        for path in [*files.values(), env_file]:
            path.touch()
        env = dict(self.context.env)
        env.update({k: self.context.evaluate(v) for k, v in self.workflow.get("env", {}).items()})
        context = Context(self.context.github, self.context.secrets, self.context.vars, env)
        env.update({k: context.evaluate(v) for k, v in job.get("env", {}).items()})
        context.env = env
        step = stage_step(job)
        # The stage step's own env (the secrets are scoped to it): its scripts see it.
        env.update({k: context.evaluate(v) for k, v in step.get("env", {}).items()})
        given = {k: context.evaluate(v) for k, v in step["with"].items()}
        if self.extra_configs:
            given["release-config"] = " ".join(
                [given.get("release-config", ""), *self.extra_configs]
            ).strip()
        given.update(self.extra_inputs)
        given["reports-dir"] = str(workdir / "reports")
        given["ledger"] = str(workdir / "ledger" / "ledger.json")
        run = JobRun(name, "success")
        self.results[name] = run
        base_env = {
            **os.environ,
            **env,
            "GITHUB_ACTIONS": "true",
            "GITHUB_JOB": name,
            "GITHUB_ENV": str(env_file),
            "RUNNER_TEMP": str(workdir / "runner-temp"),
            **{f"GITHUB_{k.upper()}": v for k, v in self.context.github.items()},
            **{k: str(v) for k, v in files.items()},
        }
        base_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base_env['PATH']}"
        (workdir / "runner-temp").mkdir()
        for action_step in self.action["runs"]["steps"]:
            if not self._step_applies(action_step, given, run):
                continue
            title = action_step.get("name", action_step.get("uses", "?"))
            if title in NOT_RUN_HERE:
                continue
            if "uses" in action_step:
                self._emulate(action_step, given, name, workdir)
                continue
            step_env = dict(base_env)
            step_env.update(_read_env_file(env_file))
            step_env.update(
                {k: _inputs(v, given, self.action, workdir) for k, v in action_step["env"].items()}
            )
            files["GITHUB_OUTPUT"].write_text("")
            done = run_bash(action_step["run"], ROOT, step_env)
            outputs = _read_env_file(files["GITHUB_OUTPUT"])
            run.steps.append(StepRun(title, done.returncode, done.stdout, done.stderr, outputs))
            if done.returncode != 0:
                run.result = "failure"
        run.summary = files["GITHUB_STEP_SUMMARY"].read_text()
        return run

    def _step_applies(self, step: dict[str, Any], given: dict[str, str], run: JobRun) -> bool:
        condition = str(step.get("if", "success()"))
        failed = run.result == "failure"
        always = condition.startswith("always()")
        if failed and not always:
            return False
        for part in condition.removeprefix("always()").split("&&"):
            part = part.strip()
            if not part or part == "success()":
                continue
            match = re.fullmatch(r"inputs\.([\w-]+) (==|!=) '([^']*)'", part)
            if not match:
                raise AssertionError(f"step condition not emulated: {condition}")
            value = given.get(match.group(1), _default(self.action, match.group(1)))
            if (value == match.group(3)) != (match.group(2) == "=="):
                return False
        return True

    def _emulate(
        self, step: dict[str, Any], given: dict[str, str], job: str, workdir: Path
    ) -> None:
        uses, with_ = step["uses"], step.get("with", {})
        if uses not in EMULATED_USES:
            raise AssertionError(f"action not emulated: {uses}")
        if uses == "actions/download-artifact@v4":
            assert with_["pattern"] == "ledger-*"
            target = Path(_inputs(with_["path"], given, self.action, workdir))
            for artifact in self.artifacts.glob("ledger-*"):
                shutil.copytree(artifact, target / artifact.name)
        elif uses == "actions/upload-artifact@v4":
            name = _inputs(with_["name"], given, self.action, workdir)
            source = Path(_inputs(with_["path"], given, self.action, workdir))
            if name.startswith("ledger-") and source.is_file():
                (self.artifacts / name).mkdir(exist_ok=True)
                shutil.copy(source, self.artifacts / name / source.name)


def _default(action: dict[str, Any], name: str) -> str:
    return str(action["inputs"][name].get("default", ""))


def _inputs(text: str, given: dict[str, str], action: dict[str, Any], workdir: Path) -> str:
    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr == "runner.temp":
            return str(workdir / "runner-temp")
        if expr.startswith("inputs."):
            name = expr.removeprefix("inputs.")
            return given.get(name, _default(action, name))
        raise AssertionError(f"expression not emulated in action.yml: {match.group(0)}")

    return EXPR.sub(one, str(text))


def _read_env_file(path: Path) -> dict[str, str]:
    """A ``GITHUB_OUTPUT``/``GITHUB_ENV`` file as the runner reads it: ``name=value`` and
    ``name<<DELIMITER`` ... ``DELIMITER``."""
    from tests.support.spine import github_outputs

    return github_outputs(path)

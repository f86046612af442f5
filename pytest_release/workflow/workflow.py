"""Generate the GitHub Actions workflow of a release pipeline from its configured stages.

``python -m pytest_release workflow --release-config=suites/release.toml ...`` writes
one job per stage: ``needs:`` from ``requires``, the stage's ``environment`` (its
approval, recorded with ``--approved-via``), the install steps its gate kinds need, and
the composite action of this repository (``action.yml``) that installs pytest-release,
runs ``pytest --stage=<stage>``, carries the ledger between jobs and renders JUnit.
This module plans the jobs and builds the workflow as data (``workflow_data``);
``workflow_file`` writes it as YAML and is the command line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_release.errors import ReleaseConfigError
from pytest_release.workflow.matrix import shard_counts, shard_problem, split_matrix

if TYPE_CHECKING:
    from pytest_release.config.release import ReleaseConfig

DEFAULT_IMAGE = "ghcr.io/${{ github.repository }}:${{ github.sha }}"
ACTION_REPOSITORY = "pytest-release/pytest-release"
# A released version (the tag ``v<version>`` exists); a dev or local build has no tag.
RELEASED_VERSION = re.compile(r"\d+(\.\d+)*")


class WorkflowError(ReleaseConfigError):
    """The workflow cannot be written from this configuration or these options."""


def default_action(version: str | None = None) -> str:
    """The stage action at the released tag of this pytest-release (``v<version>``), as
    published actions are used: the workflow and the action it runs belong together."""
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            version = installed("pytest-release")
        except PackageNotFoundError:
            version = "unknown"
    if not RELEASED_VERSION.fullmatch(version):
        raise WorkflowError(
            f"pytest-release {version} is not a released version, so there is no tag "
            f"v{version} of the action to pin: pass --action={ACTION_REPOSITORY}@<tag or "
            "commit sha> (or --action=./ inside the pytest-release repository)"
        )
    return f"{ACTION_REPOSITORY}@v{version}"


NEWMAN_INSTALL = "npm install --no-save --no-package-lock --no-audit --no-fund newman@6"
# pip extras of pytest-release a gate kind needs.
KIND_EXTRAS = {"lint": "lint", "docker": "docker", "e2e": "e2e", "canary": "canary"}


@dataclass(frozen=True)
class Options:
    """What the workflow is generated from besides the release configuration."""

    release_configs: tuple[str, ...] = ()
    pytest_args: str = ""
    install: str | None = None  # pip arguments; None: pytest-release with the needed extras
    action: str = ""  # empty: default_action(), the tag of this version
    image: str = DEFAULT_IMAGE
    python_version: str = "3.11"
    branch: str = "main"
    name: str = "release"
    stage_env: tuple[tuple[str, str, str], ...] = ()  # (stage, NAME, value)
    split_gates: tuple[str, ...] = ()  # stages whose gates run as a job matrix
    shard_gates: tuple[tuple[str, str, int], ...] = ()  # (stage, gate, N): N jobs by test

    def argv(self) -> list[str]:
        """The command-line arguments that reproduce these options."""
        args = [f"--release-config={c}" for c in self.release_configs]
        if self.pytest_args:
            args.append(f"--pytest-args={self.pytest_args}")
        if self.install is not None:
            args.append(f"--install={self.install}")
        defaults = Options()
        for flag, value, default in (
            ("--action", self.action, defaults.action),  # "" is the default, not written
            ("--image", self.image, defaults.image),
            ("--python-version", self.python_version, defaults.python_version),
            ("--branch", self.branch, defaults.branch),
            ("--name", self.name, defaults.name),
        ):
            if value != default:
                args.append(f"{flag}={value}")
        args += [f"--stage-env={s}:{n}={v}" for s, n, v in self.stage_env]
        args += [f"--split-gates={stage}" for stage in self.split_gates]
        args += [f"--shard-gate={s}:{g}={n}" for s, g, n in self.shard_gates]
        return args


@dataclass
class Job:
    stage: str
    description: str
    needs: list[str]
    condition: str | None = None
    environment: str | None = None
    packages_write: bool = False
    registry: str | None = None
    newman: bool = False
    google_auth: bool = False  # a Cloud Run stage: Workload Identity Federation first
    env: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


# -- reading the configuration ---------------------------------------------------------------
def load(release_configs: Sequence[str], rootdir: Path) -> ReleaseConfig:
    """The release configuration as ``pytest --release-config=...`` would see it (the
    built-in gate kinds validate the gate tables; no pytest session is started)."""
    from pytest_release.config.release import load_release_config, merge_layers, read_table
    from pytest_release.gates import builtin_gate_kinds

    if release_configs:
        paths = [rootdir / c for c in release_configs]
        tables = [read_table(p, pyproject=p.name == "pyproject.toml") for p in paths]
        table, source = merge_layers(tables), " + ".join(release_configs)
    else:
        path = rootdir / "pyproject.toml"
        table = read_table(path, pyproject=True) if path.is_file() else {}
        source = "pyproject.toml" if path.is_file() else "the built-in defaults"
    return load_release_config(table, source, builtin_gate_kinds())


def _gates(config: ReleaseConfig, stage: str) -> list[tuple[str, Any]]:
    """The stage's gates with the settings it runs with (its target environment's)."""
    gates = config.for_stage(stage).gates
    return [(name, gates[name]) for name in config.stage(stage).gates]


def _canary_settings(config: ReleaseConfig, gate: Any) -> Any:
    other = getattr(gate, "settings_from", None)
    return config.gates.get(other, gate) if other else gate


def _platform_needs(config: ReleaseConfig, stage: str) -> tuple[set[str], set[str]]:
    """The pytest-release extras and the CI credentials the stage's platforms need, as
    their registrations say (asked through the canary gate: the spine knows no platform)."""
    extras: set[str] = set()
    credentials: set[str] = set()
    for _, gate in _gates(config, stage):
        needs = getattr(_canary_settings(config, gate), "platform_needs", None)
        if callable(needs):
            extra, wanted = needs()
            extras.update([extra] if extra else [])
            credentials.update(wanted)
    return extras, credentials


def _needs_kubeconfig(config: ReleaseConfig, stage: str) -> bool:
    return "kubeconfig" in _platform_needs(config, stage)[1]


def _needs_google_auth(config: ReleaseConfig, stage: str) -> bool:
    return "google" in _platform_needs(config, stage)[1]


def _pushes(config: ReleaseConfig, stage: str) -> bool:
    return any(g.kind == "docker" and getattr(g, "push", False) for _, g in _gates(config, stage))


def _is_rollback(config: ReleaseConfig, stage: str) -> bool:
    rollout = config.stage(stage).rollout
    return rollout is not None and rollout.action == "rollback"


def _deploys(config: ReleaseConfig, stage: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether the stage changes production, or runs after a stage that does (a stage
    with a ``target`` deploys to that environment, not to production)."""
    stage_config = config.stage(stage)
    production = stage_config.target is None
    if stage_config.rollout is not None and production and not _is_rollback(config, stage):
        return True
    return any(_deploys(config, r, seen | {stage}) for r in stage_config.requires if r not in seen)


def _extras(config: ReleaseConfig) -> list[str]:
    extras: set[str] = set()
    for stage in config.stages:
        for _, gate in _gates(config, stage):
            if gate.kind in KIND_EXTRAS:
                extras.add(KIND_EXTRAS[gate.kind])
        extras.update(_platform_needs(config, stage)[0])
    return sorted(extras)


def _registry(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first) else "docker.io"


def plan_jobs(config: ReleaseConfig, options: Options) -> list[Job]:
    install = options.install
    if install is None:
        extras = _extras(config)
        install = "pytest-release" + (f"[{','.join(extras)}]" if extras else "")
    jobs = []
    for stage, stage_config in config.stages.items():
        if _is_rollback(config, stage):
            needs = [s for s in config.stages if s != stage and _deploys(config, s)]
            condition = "${{ failure() && contains(needs.*.result, 'failure') }}"
        else:
            needs, condition = list(stage_config.requires), None
        kinds = {gate.kind for _, gate in _gates(config, stage)}
        job = Job(
            stage=stage,
            description=stage_config.description,
            needs=needs,
            condition=condition,
            environment=stage_config.environment,
            newman="newman" in kinds,
            google_auth=_needs_google_auth(config, stage),
        )
        inputs = job.inputs
        inputs["stage"] = stage
        if options.release_configs:
            inputs["release-config"] = " ".join(options.release_configs)
        if options.pytest_args:
            inputs["pytest-args"] = options.pytest_args
        inputs["install"] = install
        if options.python_version != Options.python_version:
            inputs["python-version"] = options.python_version
        rollout = stage_config.rollout
        if _pushes(config, stage) or (rollout is not None and not _is_rollback(config, stage)):
            inputs["image"] = "${{ env.IMAGE }}"
        if _pushes(config, stage):
            job.packages_write = True
            job.registry = _registry(options.image)
        if "e2e" in kinds:
            inputs["playwright-browsers"] = "chromium"
        if stage_config.environment:
            inputs["approved-via"] = stage_config.environment
        if _needs_kubeconfig(config, stage) or config.ledger.backend == "kubernetes":
            inputs["kubeconfig"] = "${{ secrets.KUBECONFIG }}"
            inputs["require-kubeconfig"] = "true"
        if config.reports_dir != "reports":
            inputs["reports-dir"] = config.reports_dir
        if config.ledger.backend == "file":
            if config.ledger.path != ".pytest-release/ledger.json":
                inputs["ledger"] = config.ledger.path
            if needs:
                inputs["ledger-from"] = " ".join(needs)
        else:
            inputs["ledger-artifacts"] = "false"
        for env_stage, name, value in options.stage_env:
            if env_stage == stage:
                job.env[name] = value
        if job.env:
            inputs["required-env"] = " ".join(job.env)
        jobs.append(job)
    return jobs


# -- the workflow as data ----------------------------------------------------------------
# GitHub job ids (and so stage names here): a letter or "_" first, then letters, digits,
# "-" and "_" (docs.github.com, "jobs.<job_id>").
JOB_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
ROLLBACK_NOTE = "After a failed rollout or smoke stage only (not when nothing was deployed)."


def check_job_ids(config: ReleaseConfig) -> None:
    """Every stage becomes a job: a name GitHub cannot take as a job id is an error here,
    not a workflow GitHub rejects."""
    bad = [stage for stage in config.stages if not JOB_ID.fullmatch(stage)]
    if bad:
        names = ", ".join(repr(s) for s in bad)
        raise WorkflowError(
            f"stage name(s) {names} cannot be GitHub Actions job ids: a job id starts with a "
            "letter or '_' and holds only letters, digits, '-' and '_'; rename the stage "
            "(e.g. 'v1.2' -> 'v1-2', '1st' -> 'stage-1st') in the release configuration"
        )


def check_options(config: ReleaseConfig, options: Options) -> None:
    """Option values are written into the workflow's header comment (to regenerate it) and
    into its data: a line break or control character there could end the comment."""
    unknown = sorted({s for s, _, _ in options.stage_env if s not in config.stages})
    if unknown:
        raise WorkflowError(
            f"--stage-env names stage(s) {', '.join(map(repr, unknown))}, which are not "
            f"configured; configured stages: {', '.join(config.stages)}"
        )
    values = [*options.release_configs, options.pytest_args, options.install or ""]
    values += [options.action, options.image, options.python_version, options.branch]
    values += [options.name, *(f"{s}:{n}={v}" for s, n, v in options.stage_env)]
    for value in values:
        if any(not (c.isprintable() or c == "\t") for c in value):
            raise WorkflowError(
                f"option value {value!r} holds a line break or control character; the "
                "workflow generator takes single-line values only"
            )


def check_splits(config: ReleaseConfig, options: Options) -> None:
    """A stage split across jobs runs its gates without each other (``--release-gate``):
    only a stage of more than one gate, with no rollout (a rollout is one ordered run)."""
    if options.split_gates and config.ledger.backend != "file":
        raise WorkflowError(
            f"--split-gates: the shards' records are merged from their ledger files, but "
            f"ledger.backend = {config.ledger.backend!r}; use the file ledger to split a stage"
        )
    for stage in options.split_gates:
        if stage not in config.stages:
            raise WorkflowError(
                f"--split-gates names stage {stage!r}, which is not configured; configured "
                f"stages: {', '.join(config.stages)}"
            )
        stage_config = config.stage(stage)
        if stage_config.rollout is not None:
            raise WorkflowError(
                f"--split-gates={stage}: the stage has a rollout ({stage_config.rollout.action}), "
                "whose steps must run in order in one job; split a stage of checks only"
            )
        if len(stage_config.gates) < 2 and not shard_counts(options.shard_gates, stage):
            raise WorkflowError(
                f"--split-gates={stage}: the stage has one gate ({', '.join(stage_config.gates)}); "
                "there is nothing to split (--shard-gate=STAGE:GATE=N splits a gate's tests)"
            )
        bad = [g for g in stage_config.gates if not JOB_ID.fullmatch(g)]
        if bad:
            raise WorkflowError(
                f"--split-gates={stage}: gate name(s) {', '.join(map(repr, bad))} cannot be "
                "part of artifact and job names (letters, digits, '-' and '_' only); rename "
                "the gate"
            )
    problem = shard_problem(config, options.split_gates, options.shard_gates)
    if problem:
        raise WorkflowError(problem)


def _split(
    config: ReleaseConfig, options: Options, job: Job, data: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The jobs of a stage split by gate: ``<stage>-shards``, a matrix with one job per
    gate (``--release-gate``), and ``<stage>``, which records the stage as one run from
    the shards' ledgers (``merge-shards``) so later jobs need and read it as before."""
    gates = list(config.stage(job.stage).gates)
    counts = shard_counts(options.shard_gates, job.stage)
    matrix = split_matrix(gates, counts)
    shards = {key: value for key, value in data.items() if key != "steps"}
    shards["name"] = f"stage {job.stage} (${{{{ matrix.gate }}}})"
    shards["strategy"] = {"fail-fast": False, "matrix": matrix}
    steps = [dict(step) for step in data["steps"]]
    stage_step = steps[-1]
    stage_step["with"] = {
        **stage_step["with"],
        "gates": "${{ matrix.gate }}",
        "artifact-suffix": "-${{ matrix.gate }}",
    }
    if counts:
        shards["name"] = f"stage {job.stage} (${{{{ matrix.gate }}}} ${{{{ matrix.shard }}}})"
        given = stage_step["with"].get("pytest-args", "")
        stage_step["with"]["pytest-args"] = f"{given} ${{{{ matrix.shard-args }}}}".strip()
        stage_step["with"]["artifact-suffix"] = "${{ matrix.suffix }}"
    shards["steps"] = steps
    merge_inputs = {
        key: value
        for key, value in job.inputs.items()
        if key in ("stage", "release-config", "install", "python-version", "ledger")
    }
    suffixes = [e["suffix"] for e in matrix["include"]] if counts else [f"-{g}" for g in gates]
    merge_inputs["ledger-from"] = " ".join(f"{job.stage}{suffix}" for suffix in suffixes)
    merge_inputs["merge-shards"] = "true"
    merge: dict[str, Any] = {
        "name": f"stage {job.stage}",
        "needs": [f"{job.stage}-shards"],
        # Also after a failed shard: the stage is then recorded as failed, with the reason.
        "if": "${{ !cancelled() }}",
        "runs-on": "ubuntu-latest",
        "steps": [
            {"uses": "actions/checkout@v4"},
            {
                "name": f"Stage {job.stage} from its shards",
                "uses": stage_step["uses"],
                "with": merge_inputs,
            },
        ],
    }
    return {f"{job.stage}-shards": shards, job.stage: merge}


def _secrets_of(config: ReleaseConfig, stage: str) -> list[str]:
    """The configured secrets the stage's step gets in its ``env``: a secret that is a
    canary gate's Slack webhook goes only to the stages running such a gate; any other
    secret (its user is not known here) to every stage."""
    slack_envs: dict[str, set[str]] = {}
    for name in config.stages:
        for _, gate in _gates(config, name):
            if gate.kind == "canary":
                slack = getattr(_canary_settings(config, gate), "slack", None)
                if slack is not None:
                    slack_envs.setdefault(slack.webhook_env, set()).add(name)
    return [s for s in config.secrets if s not in slack_envs or stage in slack_envs[s]]


def _job_data(job: Job, options: Options, secrets: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"name": f"stage {job.stage}"}
    if job.needs:
        data["needs"] = list(job.needs)
    if job.condition:
        data["if"] = job.condition
    data["runs-on"] = "ubuntu-latest"
    if job.environment:
        data["environment"] = job.environment
    if job.packages_write or job.google_auth:
        permissions = {"contents": "read", "checks": "write"}
        if job.packages_write:
            permissions["packages"] = "write"
        if job.google_auth:
            permissions["id-token"] = "write"  # Workload Identity Federation
        data["permissions"] = permissions
    if job.env:
        data["env"] = dict(job.env)
    steps: list[dict[str, Any]] = [{"uses": "actions/checkout@v4"}]
    if job.newman:
        steps.append({"name": "Install newman (gate kind newman)", "run": NEWMAN_INSTALL})
    if job.registry:
        steps.append(_login(job.registry))
    if job.google_auth:
        steps.append(GOOGLE_AUTH)
    action = options.action or default_action()
    stage_step: dict[str, Any] = {"name": f"Stage {job.stage}", "uses": action}
    if secrets:
        # Only the stage's step sees the secrets, not the workflow's other steps.
        stage_step["env"] = {name: f"${{{{ secrets.{name} }}}}" for name in secrets}
    stage_step["with"] = dict(job.inputs)
    steps.append(stage_step)
    data["steps"] = steps
    return data


def workflow_data(config: ReleaseConfig, options: Options) -> dict[str, Any]:
    """The workflow as the data GitHub reads (``render`` writes it as YAML)."""
    check_job_ids(config)
    check_options(config, options)
    check_splits(config, options)
    jobs: dict[str, dict[str, Any]] = {}
    for job in plan_jobs(config, options):
        data = _job_data(job, options, _secrets_of(config, job.stage))
        if job.stage in options.split_gates:
            jobs.update(_split(config, options, job, data))
        else:
            jobs[job.stage] = data
    return {
        "name": options.name,
        "on": {"push": {"branches": [options.branch]}, "workflow_dispatch": None},
        "concurrency": {
            "group": "${{ github.workflow }}-${{ github.ref }}",
            "cancel-in-progress": False,
        },
        "permissions": {"contents": "read", "checks": "write"},
        "env": {"IMAGE": options.image},
        "jobs": jobs,
    }


# Application Default Credentials for the Cloud Run platform (docs/cloud-run.md): the
# action writes a credentials file and sets GOOGLE_APPLICATION_CREDENTIALS for later steps.
GOOGLE_AUTH: dict[str, Any] = {
    "name": "Authenticate to Google Cloud (platform cloud-run)",
    "uses": "google-github-actions/auth@v2",
    "with": {
        "workload_identity_provider": "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}",
        "service_account": "${{ vars.GCP_SERVICE_ACCOUNT }}",
    },
}


def _login(registry: str) -> dict[str, Any]:
    if registry == "ghcr.io":
        user, password = "${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}"
    else:
        user, password = "${{ vars.REGISTRY_USERNAME }}", "${{ secrets.REGISTRY_PASSWORD }}"
    return {
        "name": f"Log in to {registry} (gate kind docker, push)",
        "uses": "docker/login-action@v3",
        "with": {"registry": registry, "username": user, "password": password},
    }

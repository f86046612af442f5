"""The adoption steps of docs/github-actions.md against the workflow they produce: the
command of step 3 is run for the reference service (examples/shop, its suites in suites/)
and every job, secret, variable, environment and namespace the workflow and the GitHub
profile use must be named in the step that sets it up (issue 26, item 8)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from pytest_release.workflow import file as workflow_file
from pytest_release.workflow import workflow
from tests.workflow_support import ROOT, WORKFLOW, load_yaml, needs_order, stage_step

DOCS = ROOT / "docs" / "github-actions.md"


def _adoption() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## Adopt it: from an empty repository to a first green run")
    end = text.index("\n## ", start + 3)
    return text[start:end]


def _steps() -> dict[int, str]:
    """The numbered steps of the adoption section, by number."""
    found = re.split(r"^(\d+)\. ", _adoption(), flags=re.MULTILINE)
    return {int(number): body for number, body in zip(found[1::2], found[2::2], strict=True)}


def _command() -> list[str]:
    """The generator's arguments in step 3's code block (without ``-o``)."""
    block = _steps()[3].split("```", 2)[1]
    lines = [line.strip() for line in block.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("python -m pytest_release"))
    joined = " ".join(line.removesuffix("\\").strip() for line in lines[start:])
    argv = shlex.split(joined)[4:]  # after: python -m pytest_release workflow
    assert argv[-2] == "-o", argv
    return argv[:-2]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("adoption") / "release.yml"
    assert workflow_file.main([*_command(), "-o", str(out)], ROOT) == 0
    return load_yaml(out)


def test_the_documented_command_is_the_one_of_the_committed_workflow() -> None:
    assert _command() == workflow_file.recorded_argv(WORKFLOW.read_text(encoding="utf-8"))
    assert [n for n in _steps()] == list(range(1, len(_steps()) + 1))  # in order, none missed


def test_the_documented_jobs_are_the_workflows(generated: dict[str, Any]) -> None:
    step = " ".join(_steps()[3].split())
    sentence = step.split("Jobs of the reference workflow", 1)[1].split(".", 1)[0]
    assert re.findall(r"`([^`]+)`", sentence) == needs_order(generated["jobs"])


def test_every_secret_and_variable_is_set_up_in_a_step(generated: dict[str, Any]) -> None:
    text = str(generated)  # every value of the workflow
    secrets = set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", text))
    variables = set(re.findall(r"vars\.([A-Za-z_][A-Za-z0-9_]*)", text))
    assert secrets == {"GITHUB_TOKEN", "KUBECONFIG", "SLACK_WEBHOOK_URL"}
    assert variables == {"SHOP_URL", "STAGING_URL", "PROMETHEUS_URL"}
    adoption = _adoption()
    for name in secrets - {"GITHUB_TOKEN"}:  # GitHub provides GITHUB_TOKEN (step 4)
        assert f"**Secret `{name}`**" in adoption, name
    assert "`GITHUB_TOKEN`" in _steps()[4]
    for name in variables:
        assert re.search(rf"\*\*Variables?[^*]*`{name}`", adoption), name


def test_the_jobs_each_secret_reaches_are_named(generated: dict[str, Any]) -> None:
    steps = _steps()
    kubeconfig = [n for n, j in generated["jobs"].items() if "kubeconfig" in stage_step(j)["with"]]
    slack = [n for n, j in generated["jobs"].items() if stage_step(j).get("env")]
    assert kubeconfig
    assert slack
    kube_step = next(b for b in steps.values() if b.startswith("**Secret `KUBECONFIG`**"))
    slack_step = next(b for b in steps.values() if b.startswith("**Secret `SLACK_WEBHOOK_URL`**"))
    used_by = kube_step.split("Used by", 1)[1].split(";", 1)[0]
    assert sorted(re.findall(r"`([a-z0-9-]+)`", used_by)) == sorted(kubeconfig)
    receivers = slack_step.split("jobs running a canary gate", 1)[1].split(")", 1)[0]
    assert sorted(re.findall(r"`([a-z0-9-]+)`", receivers)) == sorted(slack)


def test_environments_and_namespaces_are_set_up(generated: dict[str, Any]) -> None:
    adoption = _adoption()
    for job in generated["jobs"].values():
        if "environment" in job:
            assert f"**Environment `{job['environment']}`**" in adoption
    config = workflow.load(["suites/release.toml", "suites/github.toml"], ROOT)
    namespaces = set()
    for stage in config.stages:
        gates = config.for_stage(stage).gates
        for name in config.stage(stage).gates:
            gate = gates[name]
            gate = gates[other] if (other := getattr(gate, "settings_from", None)) else gate
            platform = getattr(gate, "platform", None)
            if getattr(platform, "type", None) == "kubernetes":
                namespaces.add(platform.namespace)  # type: ignore[union-attr]
    assert namespaces == {"shop", "shop-staging"}
    cluster_step = next(b for b in _steps().values() if b.startswith("**Prepare the cluster**"))
    for namespace in namespaces:
        assert f"kubectl apply -n {namespace} -f deploy/kubernetes/example/" in cluster_step
    assert "imagePullSecrets" in cluster_step


def test_the_canary_evidence_step_says_what_the_profile_judges_on(
    generated: dict[str, Any],
) -> None:
    config = workflow.load(["suites/release.toml", "suites/github.toml"], ROOT)
    step = next(b for b in _steps().values() if b.startswith("**Expose the canary's evidence"))
    words = " ".join(step.split())
    for stage in ("staging", "canary-1", "canary-2", "canary-3"):
        judge = config.for_stage(stage).gates["canary"].judge  # type: ignore[attr-defined]
        assert f"judge.http_checks = {str(judge.http_checks).lower()}" in words
        assert f"judge.max_restarts = {judge.max_restarts}" in words
        assert f'judge.evidence = ["{judge.evidence[0]}"]' in words
        assert len(judge.evidence) == 1
        prometheus = judge.prometheus
        assert f'template = "{prometheus.template}"' in words
        assert f'url_env = "{prometheus.url_env}"' in words
        # The job of each judged stage has the variable, and fails early without it.
        job = generated["jobs"][stage]
        assert job["env"][prometheus.url_env] == f"${{{{ vars.{prometheus.url_env} }}}}"
        assert prometheus.url_env in stage_step(job)["with"]["required-env"].split()
        for selector in (prometheus.stable_selector, prometheus.canary_selector):
            label = selector.split('"')[1].split("@")[0]
            assert f"`{label}@...`" in step or label.startswith("shop-staging-"), label


def test_examples_shop_is_what_the_workflow_builds() -> None:
    config = workflow.load(["suites/release.toml", "suites/github.toml"], ROOT)
    build = config.gates["build"]
    context = Path(str(getattr(build, "context", "")))
    assert (ROOT / context / "Dockerfile").is_file()
    assert (ROOT / context).resolve() == (ROOT / "examples" / "shop").resolve()

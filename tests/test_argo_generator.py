"""``python -m pytest_release argo-rollouts`` without a cluster: what the generated steps
and metrics say, and bad input as an error naming the value and the fix (exit 2). The
schemas are checked by a real API server in tests/kubernetes/test_argo_resources.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_release.controllers import argo_cli
from tests.generator_support import bad_input_test, generate

KUBERNETES = """\
[tool.pytest-release.gates.canary.platform]
type = "kubernetes"
namespace = "shop"
app = "shop"
deployment = "shop-main"
[tool.pytest-release.gates.canary.router]
type = "traefik"
name = "shop-route"
"""


def _run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    code, out, err = generate(argo_cli.main, tmp_path, capsys, toml, *args)
    documents = [d for d in yaml.safe_load_all(out) if d] if code == 0 else []
    return code, documents, err


def test_the_steps_mirror_the_stages_and_the_metrics_answer_with_the_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, documents, err = _run(
        tmp_path, capsys, KUBERNETES, "--provider=both", "--runner-image=tests:1",
        "--analysis-url=http://analysis:8080/", "--verdict-delay=5",
    )  # fmt: skip
    assert code == 0, err
    assert "the analysis Job runs each stage as configured" in err
    *templates, rollout = documents
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["stableService"] == "shop-main"
    assert canary["canaryService"] == "shop-main-canary"
    assert canary["trafficRouting"] == {"traefik": {"weightedTraefikServiceName": "shop-route"}}
    assert rollout["spec"]["workloadRef"]["name"] == "shop-main"
    steps = canary["steps"]
    assert [s.get("setWeight") for s in steps[::2]] == [10, 50, 100]
    assert [s["analysis"]["templates"][0]["templateName"] for s in steps[1::2]] == [
        "pytest-release-canary-1", "pytest-release-canary-2", "pytest-release-canary-3",
    ]  # fmt: skip
    job, web = templates[0]["spec"]["metrics"]
    command = job["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--stage=canary-1" in command
    assert "--release-id={{args.release-id}}" in command
    assert job["provider"]["job"]["spec"]["backoffLimit"] == 0
    # The default hold of canary-1 is 15 min: the verdict is asked at its end and 5 s after.
    assert web["initialDelay"] == "900s"
    assert (web["count"], web["interval"]) == (2, "5s")
    # The first pass or fail decides; two answers of neither are Inconclusive (a pause).
    assert (web["consecutiveSuccessLimit"], web["failureLimit"]) == (1, 0)
    assert web["inconclusiveLimit"] == 1
    assert web["provider"]["web"]["url"] == (
        "http://analysis:8080/verdict/canary-1?release={{args.release-id}}"
    )
    assert web["successCondition"] == 'result.verdict == "pass"'
    assert web["failureCondition"] == 'result.verdict == "fail"'


test_bad_input_is_an_error_naming_the_value_and_the_fix = bad_input_test(
    argo_cli.main,
    [
        (KUBERNETES, ["--provider=job"], "--runner-image=IMAGE"),
        (KUBERNETES, ["--provider=web", "--analysis-url=analysis:8080"], "'analysis:8080'"),
        (KUBERNETES, ["--runner-image=t", "--stages=canary-9"], "'canary-9', which"),
        (KUBERNETES, ["--runner-image=t", "--stages=uat"], "'uat', whose rollout action"),
        (KUBERNETES, ["--runner-image=t", "--verdict-delay=-1"], "got -1"),
        (
            '[tool.pytest-release.gates.canary.platform]\ntype = "local-process"\n'
            'command = ["x"]\n',
            ["--runner-image=t"],
            "need platform.type = 'kubernetes' and router.type = 'traefik'",
        ),
    ],
)

"""``python -m pytest_release flagger`` and ``webhook`` against a real API server with
Flagger's CRDs (v1.36.1, vendored in tests/data/flagger): the generated Canary passes the
Canary CRD's schema (server-side dry-run, strict field validation), a planted error fails
it, and the ``rollout`` webhook judges the stage configured with the weight the Canary's
status says (Flagger's payload does not carry it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.analysis_support import analysis_server, record_stage
from tests.analysis_support import flagger_payload as payload
from tests.analysis_support import post_json as post
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.flagger_support import flagger_cluster
from tests.kubernetes.generated_support import (
    PLATFORM_TOML,
    assert_planted_error_refused,
    pytest_release,
    server_dry_run,
    write_project,
)

__all__ = ["flagger_cluster"]

SMOKE_TOML = """\
[tool.pytest-release.stages.smoke]
gates = ["unit"]
requires = []
"""


def _generate(root: Path, namespace: str, *args: str) -> dict[str, Any]:
    write_project(root, PLATFORM_TOML + SMOKE_TOML, namespace)
    pytest_release(root, "flagger", "-o", "canary.yaml", *args)
    document = yaml.safe_load((root / "canary.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_the_generated_canary_passes_the_flagger_crd_schema(
    flagger_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    canary = _generate(
        tmp_path, namespace, "--webhook-url=http://pytest-release-webhook:8080",
        "--pre-rollout-stage=smoke",
    )  # fmt: skip
    analysis = canary["spec"]["analysis"]
    assert analysis["stepWeights"] == [10, 50]
    assert [w["type"] for w in analysis["webhooks"]] == [
        "pre-rollout", "rollout", "rollback", "confirm-promotion", "post-rollout",
    ]  # fmt: skip
    applied = server_dry_run(flagger_cluster, tmp_path / "canary.yaml")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("(server dry run)") == 1, applied.stdout


@pytest.mark.parametrize(
    ("path", "bad", "named"),
    [
        pytest.param(("spec", "analysis"), {"stepWeigths": [10]}, "stepWeigths", id="typo"),
        pytest.param(("spec", "analysis", "webhooks", 0), {"type": "judge"}, "judge", id="enum"),
        pytest.param(("spec", "analysis"), {"interval": "1h"}, "interval", id="pattern"),
    ],
)
def test_a_planted_schema_error_fails_the_dry_run(
    flagger_cluster: KwokCluster,
    namespace: str,
    tmp_path: Path,
    path: tuple[Any, ...],
    bad: dict[str, Any],
    named: str,
) -> None:
    canary = _generate(tmp_path, namespace, "--webhook-url=http://webhook:8080")
    assert_planted_error_refused(flagger_cluster, tmp_path, [canary], (0, *path), bad, named)


def test_the_rollout_webhook_judges_the_stage_of_the_canarys_weight(
    flagger_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    canary = _generate(tmp_path, namespace, "--webhook-url=http://webhook:8080")
    flagger_cluster.kubectl("apply", "-f", str(tmp_path / "canary.yaml"))
    record_stage(tmp_path, "c0ffee", "canary-1", "passed", "pass")
    record_stage(tmp_path, "c0ffee", "canary-2", "rolled-back", "fail")
    answers = {}
    with analysis_server(tmp_path, "webhook", f"--kubeconfig={flagger_cluster.kubeconfig}") as url:
        for weight in (10, 50, 30):
            flagger_cluster.kubectl(
                "patch", "canary", canary["metadata"]["name"], "-n", namespace,
                "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"phase": "Progressing", "canaryWeight": weight}}),
            )  # fmt: skip
            body = {**payload("c0ffee"), "name": canary["metadata"]["name"], "namespace": namespace}
            answers[weight] = post(f"{url}/rollout", body)
    assert answers[10][0] == 200, answers[10]
    assert answers[10][1]["stage"] == "canary-1"
    assert answers[50][0] == 409, answers[50]
    assert (answers[50][1]["stage"], answers[50][1]["verdict"]) == ("canary-2", "fail")
    assert answers[30][0] == 400, answers[30]
    assert "is at 30 %" in answers[30][1]["error"]
    assert "canary-1 (10 %), canary-2 (50 %)" in answers[30][1]["error"]

"""``python -m pytest_release argo-rollouts``: the generated AnalysisTemplates and Rollout
are accepted by a real API server with the Argo Rollouts CRDs installed (server-side
dry-run, strict field validation), and a resource the schema refuses fails the check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubernetes.argo_crds import argo_cluster
from tests.kubernetes.conftest import KwokCluster
from tests.kubernetes.generated_support import (
    PLATFORM_TOML,
    assert_planted_error_refused,
    pytest_release,
    server_dry_run,
    write_project,
)

__all__ = ["argo_cluster"]


def _generate(tmp_path: Path, namespace: str, *args: str) -> list[dict[str, Any]]:
    write_project(tmp_path, PLATFORM_TOML, namespace)
    pytest_release(tmp_path, "argo-rollouts", "-o", "argo.yaml", *args)
    return [d for d in yaml.safe_load_all((tmp_path / "argo.yaml").read_text()) if d]


def test_the_generated_resources_pass_the_argo_crd_schemas(
    argo_cluster: KwokCluster, namespace: str, tmp_path: Path
) -> None:
    documents = _generate(
        tmp_path, namespace, "--provider=both", "--runner-image=shop-tests:1",
        "--analysis-url=http://analysis.example:8080", "--service-account=pytest-release",
    )  # fmt: skip
    kinds = [d["kind"] for d in documents]
    assert kinds == ["AnalysisTemplate"] * 3 + ["Rollout"]
    steps = documents[-1]["spec"]["strategy"]["canary"]["steps"]
    assert [s.get("setWeight") for s in steps[::2]] == [10, 50, 100]
    applied = server_dry_run(argo_cluster, tmp_path / "argo.yaml")
    assert applied.returncode == 0, applied.stderr
    # Each document was checked by the server (serverside-applied, dry run).
    assert applied.stdout.count("(server dry run)") == 4, applied.stdout


@pytest.mark.parametrize(
    ("index", "path", "bad"),
    [
        pytest.param(-1, ("spec", "strategy", "canary", "steps", 0), {"setWeigth": 10}, id="typo"),
        pytest.param(0, ("spec", "metrics", 0), {"successCondition": 5}, id="wrong-type"),
    ],
)
def test_a_planted_schema_error_fails_the_dry_run(
    argo_cluster: KwokCluster,
    namespace: str,
    tmp_path: Path,
    index: int,
    path: tuple[Any, ...],
    bad: dict[str, Any],
) -> None:
    documents = _generate(tmp_path, namespace, "--runner-image=shop-tests:1")
    assert_planted_error_refused(
        argo_cluster, tmp_path, documents, (index, *path), bad, next(iter(bad))
    )

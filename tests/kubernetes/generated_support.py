"""What the tests of the generated controller resources (Argo Rollouts, Flagger) share:
the project the generators read, running a ``python -m pytest_release`` command in it,
the service's Deployment, and the server-side dry run that checks a resource against
the CRD schemas of the kwok test cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.kubernetes.conftest import KwokCluster

# The table the generators read the service from; a str.format template of ``namespace``
# (a stage table added to it doubles its own braces).
PLATFORM_TOML = """\
[tool.pytest-release.gates.canary.platform]
type = "kubernetes"
namespace = "{namespace}"
app = "shop"
[tool.pytest-release.gates.canary.router]
type = "traefik"
"""


def write_project(root: Path, config: str, namespace: str) -> None:
    """``root``'s pyproject.toml: the template ``config`` (e.g. ``PLATFORM_TOML``) for
    ``namespace``."""
    (root / "pyproject.toml").write_text(config.format(namespace=namespace), encoding="utf-8")


def pytest_release(root: Path, *args: str) -> None:
    """``python -m pytest_release *args`` in ``root``, which must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest_release", *args],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def shop_deployment(namespace: str) -> dict[str, Any]:
    """The service before the release: one pod of ``shop:1``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [{"name": "shop", "image": "shop:1"}]},
            },
        },
    }


def server_dry_run(cluster: KwokCluster, path: Path) -> subprocess.CompletedProcess[str]:
    """``path`` applied server-side as a dry run with strict field validation: checked by
    the API server against the installed CRDs, stored nowhere."""
    return cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", str(path),
        check=False,
    )  # fmt: skip


def assert_planted_error_refused(
    cluster: KwokCluster,
    root: Path,
    documents: list[dict[str, Any]],
    path: tuple[Any, ...],
    bad: dict[str, Any],
    named: str,
) -> None:
    """``bad`` merged into the mapping at ``path`` of ``documents`` (its first key a
    document's index) makes the dry run fail with an error naming ``named``."""
    target: Any = documents
    for key in path:
        target = target[key]
    target.update(bad)
    planted = root / "planted.yaml"
    planted.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    applied = server_dry_run(cluster, planted)
    assert applied.returncode != 0, applied.stdout
    assert named in applied.stderr, applied.stderr


def apply_json(cluster: KwokCluster, path: Path, documents: list[dict[str, Any]]) -> None:
    """``documents`` written to ``path`` (JSON documents of one YAML stream) and applied."""
    path.write_text("\n".join(json.dumps(d) + "\n---" for d in documents))
    cluster.kubectl("apply", "-f", str(path))

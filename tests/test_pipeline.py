"""The README's first command: the reference pipeline end to end on this machine.

Runs ``scripts/pipeline.py`` (real Docker, registry, HAProxy, Chromium, newman) in a
copy of the repository's examples, suites and scripts, once green and once with a
deliberately bad release that canary-1 must roll back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pipeline_copy(tmp_path: Path, docker_client: Any, base_image: str) -> Iterator[Path]:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("examples", "suites", "scripts"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "conftest.py"):  # the lint tools see the same project
        shutil.copy(ROOT / name, copy)
    if (ROOT / "node_modules").is_dir():
        (copy / "node_modules").symlink_to(ROOT / "node_modules")
    try:
        yield copy
    finally:
        subprocess.run(
            [sys.executable, "-m", "pytest_release.canary.teardown", str(copy)],
            capture_output=True,
            check=False,
        )
        ledger = copy / ".pytest-release" / "ledger.json"
        releases = (
            {r["release_id"] for r in json.loads(ledger.read_text())["runs"]}
            if (ledger.exists())
            else set()
        )
        for release in releases:
            for image in docker_client.images.list(
                filters={"label": f"pytest-release.release={release}"}
            ):
                docker_client.images.remove(image.id, force=True)


def _pipeline(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/pipeline.py", *args],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
    )


def _explain(copy: Path, run: subprocess.CompletedProcess[str]) -> str:
    """The pipeline's output and the failures of its stage logs, for the assertion."""
    parts = [run.stdout, run.stderr]
    for log in sorted((copy / "reports" / "demo").glob("*.log")):
        text = log.read_text(errors="replace")
        if "FAILURES" in text or "ERROR" in text:
            parts.append(f"--- {log.name} ---\n{text[text.find('FAILURES') - 40 :][-6000:]}")
    return "\n".join(parts)


def _outcomes(copy: Path, release: str) -> dict[str, str]:
    runs = json.loads((copy / ".pytest-release" / "ledger.json").read_text())["runs"]
    return {r["stage"]: r["outcome"] for r in runs if r["release_id"] == release}


def _release(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("release ") and ": image " in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no release line in:\n{output}")


def test_pipeline_runs_green_then_a_bad_release_is_rolled_back(pipeline_copy: Path) -> None:
    good = _pipeline(pipeline_copy)
    assert good.returncode == 0, _explain(pipeline_copy, good)
    release = _release(good.stdout)
    assert _outcomes(pipeline_copy, release) == dict.fromkeys(
        ["uat", "build", "canary-1", "canary-2", "canary-3", "smoke"], "passed"
    )
    assert "pipeline summary for release" in good.stdout
    assert "health@" in good.stdout
    for stage in ("uat", "build", "canary-1", "canary-2", "canary-3", "smoke"):
        assert (pipeline_copy / "reports" / f"{stage}.xml").is_file()

    bad = _pipeline(pipeline_copy, "--bad")
    assert bad.returncode == 0, _explain(pipeline_copy, bad)
    bad_release = _release(bad.stdout)
    outcomes = _outcomes(pipeline_copy, bad_release)
    assert outcomes["canary-1"] == "rolled-back"
    assert "canary-2" not in outcomes
    assert "the bad release was rolled back automatically" in bad.stdout
    assert "canary error rate" in bad.stdout

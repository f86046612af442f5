"""The GitHub Actions workflow shipped for the reference service."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).parent.parent / ".github" / "workflows" / "release.yml"
STAGES = ["uat", "build", "canary-1", "canary-2", "canary-3", "smoke", "rollback"]


def _actionlint() -> str:
    found = os.environ.get("ACTIONLINT") or shutil.which("actionlint")
    if not found:
        pytest.fail(
            "actionlint is not installed: run `bash scripts/install-actionlint.sh` and put "
            "its directory on PATH (or set ACTIONLINT=/path/to/actionlint)"
        )
    return found


def test_workflow_passes_actionlint() -> None:
    result = subprocess.run(
        [_actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("needs: [canary-2]", "needs: [canary-two]", 1))
    result = subprocess.run(
        [_actionlint(), "-no-color", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "canary-two" in result.stdout


def test_every_stage_is_a_job_whose_logic_is_pytest_stage() -> None:
    text = WORKFLOW.read_text()
    for stage in STAGES:
        assert f"\n  {stage}:\n" in text, f"no job for stage {stage}"
        assert f"python -m pytest --stage={stage}" in text
    runs = [line.strip() for line in text.splitlines() if line.strip().startswith("run: ")]
    logic = [r for r in runs if "pytest" in r]
    assert len(logic) == len(STAGES)
    assert "environment: release-approval" in text
    assert "--approved-via=release-approval" in text
    assert "cancel-in-progress: false" in text
    assert "mikepenz/action-junit-report" in text

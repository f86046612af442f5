"""The build scripts of the test beds (scripts/build-*.sh), run from tests that need what
they build: each prints the built path on its last line and caches its build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def built(script: Path, what: str, fix: str) -> Path:
    """The path ``bash script`` prints last (it builds ``what`` when the cache lacks it).
    When it fails: a failure under CI, which builds everything first (never a silent skip
    there), else a skip; either names ``what``, the exit code, the end of the script's
    stderr and ``fix``."""
    try:
        result = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=3600, check=False
        )
    except subprocess.TimeoutExpired:
        result = subprocess.CompletedProcess([], 124, "", "timed out after 3600 s")
    if result.returncode != 0:
        reason = (
            f"{what} cannot be built (bash {script} exited {result.returncode}): "
            f"{result.stderr.strip()[-1500:]}\n{fix}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return Path(result.stdout.strip().splitlines()[-1])

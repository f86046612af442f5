"""The plug-in examples of ``examples/`` installed the way a user installs them: by pip,
from a copy (a build leaves files in its source), into a directory of their own that a
test puts on ``sys.path`` and ``PYTHONPATH``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def installed_example(
    name: str, distribution: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``examples/<name>`` installed by pip (no dependencies: pytest-release is the one
    under test) into a new directory; the directory.  ``distribution`` is the name of its
    ``*.dist-info`` (``pytest_release_procs``), which must be there."""
    source = tmp_path_factory.mktemp(f"{name}-source") / name
    shutil.copytree(EXAMPLES / name, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp_path_factory.mktemp(f"{name}-site")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"pip could not install examples/{name}:\n{done.stderr}"
    assert list(site.glob(f"{distribution}-*.dist-info")), sorted(os.listdir(site))
    return site

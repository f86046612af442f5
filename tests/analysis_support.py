"""The analysis server (``python -m pytest_release analysis-server``) as a process for
tests: on a free port of 127.0.0.1, ended by its PID afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def analysis_server(root: Path) -> Iterator[str]:
    """The server of the project in ``root``; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_release", "analysis-server", "--port", "0"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until it listens (or exits)
        if not line.startswith("analysis-server listening on "):
            process.wait(timeout=30)
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the analysis server did not start: {line}{stderr}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=30)


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return dict(json.load(response))

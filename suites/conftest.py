"""Shared fixtures of the reference service's release suites.

The suites test ``examples/shop``; a team copying them replaces ``SHOP_DIR`` and the
``shop_process`` command with its own service.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SHOP_DIR = Path(__file__).resolve().parent.parent / "examples" / "shop"
sys.path.insert(0, str(SHOP_DIR))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 20.0,
    path: str = "/version",
) -> None:
    """Wait until ``url + path`` answers 200 (``/version`` answers even when a fault
    knob makes ``/health`` fail)."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the shop exited with {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{url}{path} did not answer 200 within {timeout}s: {last_error}")


def start_shop(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shop"],
        cwd=SHOP_DIR,
        env={**os.environ, "PORT": str(port), "SHOP_VERSION": "test", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, process)
    except BaseException:
        stop_shop(process)
        raise
    return process, url


def stop_shop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr:
        process.stderr.close()


@pytest.fixture(scope="session")
def shop_url() -> Iterator[str]:
    """The service under test: ``$SHOP_URL`` when set (a deployed target), else a shop
    process started for the session on a free 127.0.0.1 port."""
    if os.environ.get("SHOP_URL"):
        yield os.environ["SHOP_URL"].rstrip("/")
        return
    process, url = start_shop()
    try:
        yield url
    finally:
        stop_shop(process)

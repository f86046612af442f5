"""The analysis server (``python -m pytest_release analysis-server``) and the Flagger
webhook (``webhook``) as processes for tests: on a free port of 127.0.0.1, ended by their
PID afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def analysis_server(root: Path, command: str = "analysis-server", *args: str) -> Iterator[str]:
    """The server ``command`` of the project in ``root``; yields its base URL."""
    # Its log in a file, not a pipe nobody reads while it runs (a full pipe blocks it).
    with tempfile.TemporaryFile(mode="w+") as log:
        yield from _serve(root, command, args, log)


def _serve(root: Path, command: str, args: tuple[str, ...], log: IO[str]) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_release", command, "--port", "0", *args],
        cwd=root, stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until it listens (or exits)
        if not line.startswith(f"{command} listening on "):
            process.wait(timeout=30)
            log.seek(0)
            stderr = log.read()
            raise AssertionError(f"the analysis server did not start: {line}{stderr}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=60)


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return dict(json.load(response))


def post_json(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    """POST ``body`` (JSON, or bytes as they are); the status and the JSON answer, also
    for a status that is not 2xx."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(json.load(response))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.loads(exc.read().decode()))


def flagger_payload(checksum: str, phase: str = "Progressing", **metadata: str) -> dict[str, Any]:
    """What Flagger v1.36 POSTs to a webhook (CanaryWebhookPayload)."""
    body: dict[str, Any] = {
        "name": "shop", "namespace": "shop", "phase": phase, "checksum": checksum,
    }  # fmt: skip
    if metadata:
        body["metadata"] = metadata
    return body


def record_stage(root: Path, release: str, stage: str, outcome: str, judged: str) -> None:
    """A ledger entry of ``stage`` as the canary gate writes it (the judge's word in
    ``details.canary_verdicts``), in the project's default ledger file."""
    from pytest_release.ledger.ledger import Ledger, LedgerEntry

    entry = LedgerEntry.start(
        release_id=release, stage=stage, image=None, report=None, override_requires=None
    )
    details = {"canary_verdicts": {"canary": {"verdict": judged}}}
    Ledger(root / ".pytest-release" / "ledger.json").append(
        LedgerEntry(**{**entry.to_json(), "outcome": outcome, "details": details})
    )

"""The JSON answer of the controllers' HTTP servers (the Argo Rollouts analysis server,
the Flagger webhook): one redacted body, written with its length."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_release.report.redact import Redactor


def send_json(
    handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], redact: Redactor
) -> None:
    """Answer ``body`` as JSON, redacted: a secret never leaves in an answer."""
    data = redact(json.dumps(body, sort_keys=True)).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)

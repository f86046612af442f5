"""The request handler the controllers' HTTP servers (the Argo Rollouts analysis server,
the Flagger webhook) build on: JSON answers and log lines, both redacted, and
``GET /healthz`` answered once the server serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pytest_release.report.redact import Redactor


@dataclass(frozen=True)
class ServerOutput:
    """Where a server's handler writes: every text passes ``redact`` first."""

    redact: Redactor
    log: Callable[[str], None]


class JsonHandler(BaseHTTPRequestHandler):
    """A handler answering JSON; a server's handler class sets ``output``."""

    output: ClassVar[ServerOutput]

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        """Answer ``body`` as JSON, redacted: a secret never leaves in an answer."""
        data = self.output.redact(json.dumps(body, sort_keys=True)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """``GET /healthz`` answered 200 (the server serves); any other path by
        :meth:`answer_get`."""
        if urlsplit(self.path).path == "/healthz":
            self.send_json(200, {"status": "ok"})
        else:
            self.answer_get()

    def answer_get(self) -> None:
        """A GET of any path but ``/healthz``: the server's handler answers it."""
        raise NotImplementedError

    def log_message(self, format: str, *args: Any) -> None:
        self.output.log(self.output.redact(format % args))

"""What serves the revisions of the Cloud Run emulator: one real HTTP server process per
revision (the fault service, its knobs chosen by image), and the service URL, a small
proxy that splits requests between revisions by the served traffic percentages.

The split is a smooth weighted round robin (deterministic): of every 10 requests at
90/10, exactly 1 goes to the 10 % revision, so tests count real requests exactly.
Cloud Run itself splits at random; the shares are the same.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from pytest_release.system.processes import free_port
from tests.support.http_server import QuietHandler, start_server, stop_server

FAULT_SERVICE = Path(__file__).resolve().parents[1] / "services" / "fault_service.py"


class BackendFailed(Exception):
    """The revision's container did not start listening (the message says why)."""


@dataclass
class Backend:
    """The process serving one revision on 127.0.0.1."""

    image: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_backend(
    image: str, env: Mapping[str, str], *, broken: bool, timeout: float = 30.0
) -> Backend:
    """Start the fault service as ``image`` and wait until it listens."""
    port = free_port()
    command = [sys.executable, str(FAULT_SERVICE), "--port", str(port), "--version", image]
    if broken:  # a container that exits at once, as one with a bad entrypoint
        command = [sys.executable, "-c", "import sys; sys.exit(1)"]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "PORT": str(port)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backend = Backend(image, port, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise BackendFailed(
                f"The user-provided container failed to start and listen on the port defined "
                f"by the PORT={port} environment variable (exit code {process.returncode})"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return backend
        except OSError:
            if time.monotonic() > deadline:
                backend.stop()
                raise BackendFailed(
                    f"The container did not listen on PORT={port} within {timeout:g}s"
                ) from None
            time.sleep(0.05)


@dataclass
class SplitProxy:
    """The service URL: every request goes to one revision by the served split."""

    port: int = field(default_factory=free_port)
    counts: dict[str, int] = field(default_factory=dict)  # revision -> requests sent
    _split: list[tuple[str, int, str]] = field(default_factory=list)  # revision, percent, url
    _current: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_split(self, split: Sequence[tuple[str, int, str]]) -> None:
        with self._lock:
            self._split = [s for s in split if s[1] > 0]
            self._current = {}

    def pick(self) -> tuple[str, str] | None:
        """(revision, url) of the next request (smooth weighted round robin)."""
        with self._lock:
            if not self._split:
                return None
            total = sum(p for _, p, _ in self._split)
            for revision, percent, _ in self._split:
                self._current[revision] = self._current.get(revision, 0) + percent
            revision, _, url = max(self._split, key=lambda s: self._current[s[0]])
            self._current[revision] -= total
            self.counts[revision] = self.counts.get(revision, 0) + 1
            return revision, url

    def start(self) -> None:
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once

            def _forward(self) -> None:
                chosen = proxy.pick()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if chosen is None:
                    self._answer(503, b"no revision serves traffic\n", {})
                    return
                revision, url = chosen
                host, _, port = url.removeprefix("http://").rpartition(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                try:
                    conn.request(self.command, self.path, body=body)
                    response = conn.getresponse()
                    data = response.read()
                    headers = {
                        k: v
                        for k, v in response.getheaders()
                        if k.lower() not in ("content-length", "connection", "transfer-encoding")
                    }
                    headers["X-Serverless-Revision"] = revision
                    self._answer(response.status, data, headers)
                except (OSError, http.client.HTTPException) as exc:
                    self._answer(502, f"upstream {revision}: {exc}\n".encode(), {})
                finally:
                    conn.close()

            def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _forward

        self._server = start_server(Handler, self.port)

    def stop(self) -> None:
        if self._server is not None:
            stop_server(self._server)
            self._server = None

"""Real HTTP servers on 127.0.0.1 for tests: a quiet handler base that answers in one
call, and a context manager that serves a handler on a thread and stops it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (pytest shows stderr of failing tests)."""

    def answer(self, status: int, body: bytes, content_type: str | None = None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def start_server(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """``handler`` served on 127.0.0.1:``port`` (0: a free port) by a daemon thread;
    stop it with :func:`stop_server`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True  # a kept-alive client never holds up the stop
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """``handler`` served on a free port of 127.0.0.1 while the block runs."""
    server = start_server(handler)
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def serving_reads(
    answer: Callable[[int], tuple[bytes, str]],
) -> Iterator[tuple[ThreadingHTTPServer, list[int]]]:
    """A server on a free port of 127.0.0.1 answering each GET 200 with ``answer(n)`` (the
    body and its content type), ``n`` the number of GETs so far, the first 1 (cumulative
    counters grow with it); the server and that number (one item, read while it runs)."""
    reads = [0]
    lock = threading.Lock()

    class Counted(QuietHandler):
        def do_GET(self) -> None:
            with lock:
                reads[0] += 1
                body, content_type = answer(reads[0])
            self.answer(200, body, content_type)

    with serving(Counted) as server:
        yield server, reads


def address(server: ThreadingHTTPServer) -> str:
    """``127.0.0.1:<port>`` of a server started here."""
    return f"127.0.0.1:{server.server_address[1]}"

"""How the controllers' HTTP servers (the Argo Rollouts analysis server, the Flagger
webhook) run: their common command-line options, the server on them with its redacted
output, and the loop serving until ^C."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pytest_release.config.command_line import command_parser
from pytest_release.controllers.json_answer import ServerOutput


def server_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A server's command line (:func:`command_parser`) with ``--ledger``, ``--host``
    and ``--port``: where it reads and listens."""
    p = command_parser(prog, description)
    p.add_argument("--ledger", help="the ledger file (default: the configuration's ledger.path)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    return p


def log_to_stderr(message: str) -> None:
    """A server's log line (stdout carries only the 'listening on' line)."""
    print(message, file=sys.stderr, flush=True)


def http_server(
    args: argparse.Namespace,
    secrets: Iterable[str],
    handler: Callable[[ServerOutput], type[BaseHTTPRequestHandler]],
) -> ThreadingHTTPServer:
    """The server on ``--host``/``--port`` (:func:`server_parser`) whose ``handler``
    answers with the ``secrets`` redacted and logs to stderr (:class:`ServerOutput`)."""
    from pytest_release.report.redact import Redactor

    output = ServerOutput(Redactor.from_env(secrets), log_to_stderr)
    return ThreadingHTTPServer((args.host, args.port), handler(output))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(
    server: ThreadingHTTPServer,
    name: str,
    *,
    stop: Callable[[], None] | None = None,
    sigterm: bool = False,
) -> int:
    """Say where ``name`` listens, then serve until ^C (and SIGTERM, when ``sigterm``: a
    pod stopped ends the server like ^C); ``stop`` runs once the server closed."""
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"{name} listening on http://{host}:{port}", flush=True)
    if sigterm:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if stop is not None:
            stop()
    return 0

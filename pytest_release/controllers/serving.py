"""How the controllers' HTTP servers (the Argo Rollouts analysis server, the Flagger
webhook) run: their common command-line options and the loop serving until ^C."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from http.server import ThreadingHTTPServer


def server_options(p: argparse.ArgumentParser) -> None:
    """``--ledger``, ``--host`` and ``--port``: where a server reads and listens."""
    p.add_argument("--ledger", help="the ledger file (default: the configuration's ledger.path)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")


def log_to_stderr(message: str) -> None:
    """A server's log line (stdout carries only the 'listening on' line)."""
    print(message, file=sys.stderr, flush=True)


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

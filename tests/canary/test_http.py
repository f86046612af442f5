"""The engine's probes over its one HTTP client configuration (``canary/http.py``),
against real HTTP servers on 127.0.0.1: what counts as a failure, one kept-alive
connection reopened after a transport error, timeouts; and no hand-written HTTP left in
the package."""

from __future__ import annotations

import ast
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_release.canary.http import ClientSettings, http_client, http_origin
from pytest_release.canary.platforms.local.runtimes import probe_health
from pytest_release.canary.rollout import probe_router
from tests.support.http_server import QuietHandler, address, serving

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_release"


@dataclass
class Faults:
    """Request n (from 1) answers 500 when n is in ``errors`` and gets no answer at all
    (the connection is closed) when n is in ``drops``; ``connections`` counts the TCP
    connections the server accepted."""

    errors: set[int] = field(default_factory=set)
    drops: set[int] = field(default_factory=set)
    requests: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def faulty_server() -> Iterator[tuple[str, Faults]]:
    faults = Faults()

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real router answers
        # TCP_NODELAY: headers and body are two writes; with Nagle on, the body waits for the
        # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with faults.lock:
                faults.connections += 1

        def do_GET(self) -> None:
            with faults.lock:
                faults.requests += 1
                n = faults.requests
            if n in faults.drops:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            failed = n in faults.errors
            self.answer(500 if failed else 200, b"error" if failed else b"ok")

    with serving(Handler) as server:
        yield address(server), faults


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_router_probe_counts_every_failed_request_over_one_reopened_connection(
    faulty_server: tuple[str, Faults],
) -> None:
    address, faults = faulty_server
    faults.errors = {2, 7}
    faults.drops = {4, 9}
    failures = probe_router(f"http://{address}/ignored/path", 10)
    assert failures[0] == "GET / -> 500"
    assert failures[2] == "GET / -> 500"
    assert [f.split(":")[0] for f in (failures[1], failures[3])] == [
        "GET / -> RemoteProtocolError"
    ] * 2
    assert len(failures) == 4
    assert faults.requests == 10  # no request sent twice: a retry would hide a failure
    assert faults.connections == 3  # kept alive, reopened after each dropped connection


def test_router_probe_counts_a_refused_connection_for_every_request() -> None:
    failures = probe_router(f"127.0.0.1:{closed_port()}", 3)
    assert len(failures) == 3
    assert all(f.startswith("GET / -> ConnectError: ") for f in failures), failures


def test_health_probe_takes_2xx_and_3xx_only(faulty_server: tuple[str, Faults]) -> None:
    address, faults = faulty_server
    faults.errors = {2}
    assert probe_health(address, "/health") == (True, "GET /health -> 200")
    assert probe_health(address, "/health") == (False, "GET /health -> 500")
    refused, description = probe_health(f"127.0.0.1:{closed_port()}", "/health")
    assert not refused
    assert description.startswith("GET /health -> ConnectError: ")


def test_health_probe_times_out_on_a_server_that_never_answers() -> None:
    # The kernel accepts the connection into the backlog; nobody ever reads or answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        ok, description = probe_health(f"127.0.0.1:{silent.getsockname()[1]}", "/health", 0.2)
    assert not ok
    assert description.startswith("GET /health -> ReadTimeout: "), description


def test_a_client_keeps_its_connections_to_its_limit(faulty_server: tuple[str, Faults]) -> None:
    address, faults = faulty_server
    with http_client(ClientSettings(timeout=5, connections=1)) as client:
        statuses = [client.get(f"http://{address}/").status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert faults.connections == 1


@pytest.mark.parametrize(
    ("address", "origin"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://localhost:9000/stats?x=1", "http://localhost:9000"),
        ("http://[::1]:81", "http://[::1]:81"),
        ("localhost", "http://localhost:80"),
    ],
)
def test_origin_of_an_address(address: str, origin: str) -> None:
    assert http_origin(address) == origin


def test_no_hand_written_http_in_the_package() -> None:
    """HTTP goes through httpx (``canary/http.py`` for the engine's probes), not through
    connections and retry loops written over the standard library."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name in ("http.client", "urllib.request") or name.startswith("urllib3"):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
    assert offenders == []

"""The shop's HTTP server (standard library only, so it runs in a minimal image).

Endpoints: ``GET /`` (HTML page), ``GET /health``, ``GET /version``, ``GET /metrics``
(Prometheus text format: ``http_requests_total{version,code}`` and
``http_request_duration_seconds_sum``/``_count`` of the app requests, written by hand),
``GET /api/products``, ``GET /api/products/<id>``, ``POST /api/orders``,
``GET /api/orders/<id>``.  Logs are one JSON object per line on stderr.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shop import __version__
from shop.catalog import Catalog, OrderError
from shop.faults import Faults, KnobError
from shop.page import PAGE


def log(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    sys.stderr.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stderr.flush()


class Metrics:
    """Counters of the app requests (not /health, /version, /metrics) for Prometheus."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered: dict[int, int] = {}
        self.seconds = 0.0

    def observe(self, status: int, seconds: float) -> None:
        with self.lock:
            self.answered[status] = self.answered.get(status, 0) + 1
            self.seconds += seconds

    def text(self, version: str) -> str:
        with self.lock:
            answered, seconds = dict(self.answered), self.seconds
        lines = ["# TYPE http_requests_total counter"]
        lines += [
            f'http_requests_total{{version="{version}",code="{code}"}} {count}'
            for code, count in sorted(answered.items())
        ]
        lines += [
            "# TYPE http_request_duration_seconds summary",
            f'http_request_duration_seconds_sum{{version="{version}"}} {seconds:.6f}',
            f'http_request_duration_seconds_count{{version="{version}"}} {sum(answered.values())}',
        ]
        return "\n".join(lines) + "\n"


class ShopServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], version: str, faults: Faults, environment: str
    ) -> None:
        super().__init__(address, ShopHandler)
        self.version = version
        self.faults = faults
        self.environment = environment
        self.catalog = Catalog()
        self.metrics = Metrics()


class ShopHandler(BaseHTTPRequestHandler):
    server: ShopServer
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body are two writes; with Nagle on, the body waits for the
    # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # replaced by the JSON access log in _send

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        crash = False
        body: Any  # JSON, an HTML page, or the /metrics text
        if path == "/health":
            if self.server.faults.fail_health:
                status, body = 503, {"status": "failing", "version": self.server.version}
            else:
                status, body = 200, {"status": "ok", "version": self.server.version}
        elif path == "/version":
            status, body = 200, {"version": self.server.version}
        elif path == "/metrics":
            status, body = 200, self.server.metrics.text(self.server.version)
        else:
            fail, crash = self.server.faults.on_request()
            if self.server.faults.latency_ms:
                time.sleep(self.server.faults.latency_ms / 1000)
            if fail:
                status, body = 500, {"error": "injected failure (SHOP_ERROR_RATE)"}
            else:
                status, body = self._route(method, path)
            self.server.metrics.observe(status, time.monotonic() - started)
        self._send(status, body, method, path, started)
        if crash:
            log("crash", reason="SHOP_CRASH_AFTER reached")
            os._exit(3)

    def _route(self, method: str, path: str) -> tuple[int, Any]:
        catalog = self.server.catalog
        if method == "GET" and path == "/":
            return 200, PAGE.replace("{{version}}", self.server.version)
        if method == "GET" and path == "/api/products":
            return 200, {"products": [p.to_json() for p in catalog.list_products()]}
        if method == "GET" and path.startswith("/api/products/"):
            product = catalog.products.get(path.rsplit("/", 1)[1])
            return (200, product.to_json()) if product else (404, {"error": "no such product"})
        if method == "POST" and path == "/api/orders":
            try:
                payload = self._json_body()
                order = catalog.place_order(payload.get("items"))
            except OrderError as exc:
                return 400, {"error": str(exc)}
            return 201, order.to_json()
        if method == "GET" and path.startswith("/api/orders/"):
            key = path.rsplit("/", 1)[1]
            found = catalog.orders.get(int(key)) if key.isdigit() else None
            return (200, found.to_json()) if found else (404, {"error": "no such order"})
        return 404, {"error": f"no route for {method} {path}"}

    def _json_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            raise OrderError(f"request body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise OrderError("request body must be a JSON object")
        return payload

    def _send(self, status: int, body: Any, method: str, path: str, started: float) -> None:
        if path == "/metrics":
            data, content_type = str(body).encode(), "text/plain; version=0.0.4"
        elif isinstance(body, str):
            data, content_type = body.encode(), "text/html; charset=utf-8"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Version", self.server.version)
        self.end_headers()
        self.wfile.write(data)
        log(
            "request",
            method=method,
            path=path,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
        )


def main() -> None:
    try:
        faults = Faults.from_env()
    except KnobError as exc:
        sys.exit(f"shop: {exc}")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))
    version = os.environ.get("SHOP_VERSION", __version__)
    server = ShopServer((host, port), version, faults, os.environ.get("SHOP_ENV", "dev"))

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(
        "start",
        host=host,
        port=server.server_address[1],
        version=version,
        env=server.environment,
        faults={
            "error_rate": faults.error_rate,
            "latency_ms": faults.latency_ms,
            "crash_after": faults.crash_after,
            "fail_health": faults.fail_health,
        },
    )
    server.serve_forever()
    server.server_close()
    log("stop")

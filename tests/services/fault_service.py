#!/usr/bin/env python3
"""A tiny HTTP service with fault knobs, for exercising canary verdicts for real.

Standard library only, so it runs with any ``python3`` (also in the
``local/python:bookworm`` base image).  Every knob can be set by CLI flag or env var:

=====================  ===========================  =================================
flag                   env                          effect
=====================  ===========================  =================================
``--port``             ``PORT``                     port to listen on (127.0.0.1)
``--version``          ``VERSION``                  reported on ``/``, ``/version``
``--error-rate``       ``FAULT_ERROR_RATE``         share of app requests answered 500
                                                    (deterministic: every 1/rate-th)
``--error-draws``      ``FAULT_ERROR_DRAWS``        ``every-nth`` (default) or ``random``:
                                                    each app request answers 500 with
                                                    probability ``--error-rate``
``--seed``             ``FAULT_SEED``               seed of the random draws (errors,
                                                    background, health flaps), mixed
                                                    with ``--version``; unset: unseeded
``--background-error-rate``  ``FAULT_BACKGROUND_ERROR_RATE``  each app request also
                                                    answers 500 with this probability
                                                    (random draws, as real noise)
``--health-flap``      ``FAULT_HEALTH_FLAP``        probability that a ``/health`` probe
                                                    answers 503 (random: flapping)
``--latency-ms``       ``FAULT_LATENCY_MS``         added latency of app requests
``--crash-after``      ``FAULT_CRASH_AFTER``        exit(3) after N app requests
``--fail-health``      ``FAULT_FAIL_HEALTH``        ``/health`` answers 503 (1/true)
``--fail-health-after``  ``FAULT_FAIL_HEALTH_AFTER``  ... only once N seconds after start
=====================  ===========================  =================================

App requests are every path except ``/health`` and ``/metrics``.  ``/metrics`` serves the
app requests answered so far in the Prometheus text format (written by hand: standard
library only), ``http_requests_total{version="...",code="200"|"500"}``, and
``http_request_duration_seconds_sum`` / ``_count``.  Responses carry ``X-Version`` and
``X-Replica`` (``host:port``).  SIGTERM shuts the server down cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        sys.exit(f"fault_service: {name}={raw!r} is not a number")


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0") or 0))
    parser.add_argument("--version", default=os.environ.get("VERSION", "dev"))
    parser.add_argument("--error-rate", type=float, default=_env_float("FAULT_ERROR_RATE", 0.0))
    parser.add_argument(
        "--error-draws",
        choices=("every-nth", "random"),
        default=os.environ.get("FAULT_ERROR_DRAWS", "").strip() or "every-nth",
    )
    seed = os.environ.get("FAULT_SEED", "").strip()
    parser.add_argument("--seed", default=seed or None)
    parser.add_argument(
        "--background-error-rate",
        type=float,
        default=_env_float("FAULT_BACKGROUND_ERROR_RATE", 0.0),
    )
    parser.add_argument("--health-flap", type=float, default=_env_float("FAULT_HEALTH_FLAP", 0.0))
    parser.add_argument("--latency-ms", type=float, default=_env_float("FAULT_LATENCY_MS", 0.0))
    parser.add_argument("--crash-after", type=int, default=int(_env_float("FAULT_CRASH_AFTER", 0)))
    parser.add_argument(
        "--fail-health", action="store_true", default=_env_bool("FAULT_FAIL_HEALTH")
    )
    parser.add_argument(
        "--fail-health-after",
        type=float,
        default=_env_float("FAULT_FAIL_HEALTH_AFTER", -1.0),
        help="seconds after start from which /health fails (-1: never)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error(f"--error-rate/FAULT_ERROR_RATE must be within 0..1, got {args.error_rate}")
    for name in ("background_error_rate", "health_flap"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            flag = name.replace("_", "-")
            parser.error(f"--{flag} must be within 0..1, got {getattr(args, name)}")
    if args.error_draws not in ("every-nth", "random"):
        parser.error(
            f"--error-draws/FAULT_ERROR_DRAWS must be every-nth or random, got {args.error_draws!r}"
        )
    if args.latency_ms < 0:
        parser.error(f"--latency-ms/FAULT_LATENCY_MS must be >= 0, got {args.latency_ms}")
    if args.port <= 0:
        parser.error("give the port with --port N or PORT=N")
    return args


class FaultState:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.requests = 0
        self.answered: dict[int, int] = {}  # status code -> app requests answered
        self.seconds = 0.0  # total time spent answering them
        # Seeded per version: canary and stable draw different sequences from one seed.
        self.rng = random.Random(None if args.seed is None else f"{args.seed}:{args.version}")

    def draw(self) -> float:
        with self.lock:
            return self.rng.random()

    def answer(self, status: int, seconds: float) -> None:
        with self.lock:
            self.answered[status] = self.answered.get(status, 0) + 1
            self.seconds += seconds

    def metrics(self, version: str) -> str:
        with self.lock:
            answered, seconds = dict(self.answered), self.seconds
        lines = [
            "# HELP http_requests_total App requests answered, by status code.",
            "# TYPE http_requests_total counter",
        ]
        for code in sorted({200, 500} | set(answered)):
            lines.append(
                f'http_requests_total{{version="{version}",code="{code}"}} {answered.get(code, 0)}'
            )
        lines += [
            "# HELP http_request_duration_seconds Time spent answering app requests.",
            "# TYPE http_request_duration_seconds summary",
            f'http_request_duration_seconds_sum{{version="{version}"}} {seconds:.6f}',
            f'http_request_duration_seconds_count{{version="{version}"}} {sum(answered.values())}',
        ]
        return "\n".join(lines) + "\n"

    def next_request(self) -> tuple[int, bool]:
        """Count an app request; returns (number, whether it must fail)."""
        with self.lock:
            self.requests += 1
            n = self.requests
        rate = self.args.error_rate
        if self.args.error_draws == "random":
            fail = rate > 0 and self.draw() < rate
        else:
            fail = rate > 0 and math.floor(n * rate) > math.floor((n - 1) * rate)
        background = self.args.background_error_rate
        if background > 0 and self.draw() < background:
            fail = True
        return n, fail

    def health_ok(self) -> bool:
        if self.args.fail_health:
            return False
        if self.args.health_flap > 0 and self.draw() < self.args.health_flap:
            return False
        after = self.args.fail_health_after
        return not (after >= 0 and time.monotonic() - self.started >= after)


def make_handler(state: FaultState) -> type[BaseHTTPRequestHandler]:
    args = state.args
    replica = f"{args.host}:{args.port}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: headers and body are two writes; with Nagle on, the body waits for the
        # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
        disable_nagle_algorithm = True
        server_version = "fault-service"

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Version", args.version)
            self.send_header("X-Replica", replica)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                if state.health_ok():
                    self._send(200, {"status": "ok", "version": args.version})
                else:
                    self._send(503, {"status": "failing", "version": args.version})
                return
            if path == "/metrics":
                data = state.metrics(args.version).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            started = time.monotonic()
            n, fail = state.next_request()
            if args.crash_after and n > args.crash_after:
                sys.stderr.write(f"fault_service: crashing after {args.crash_after} requests\n")
                sys.stderr.flush()
                os._exit(3)
            if args.latency_ms:
                time.sleep(args.latency_ms / 1000.0)
            status = 500 if fail else 200
            state.answer(status, time.monotonic() - started)
            if fail:
                self._send(500, {"error": "injected fault", "version": args.version})
            else:
                self._send(200, {"version": args.version, "replica": replica, "request": n})

        do_HEAD = do_GET

        def log_message(self, format: str, *log_args: object) -> None:
            if args.access_log:
                super().log_message(format, *log_args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = FaultState(args)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"fault_service {args.version} listening on {args.host}:{args.port}\n")
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

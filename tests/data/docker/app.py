"""A tiny HTTP service for the docker gate's tests (stdlib only, runs in the test image).

GET /        -> "hello from the test service"
GET /health  -> "ok"
GET /env     -> the process environment as JSON
Environment: PORT (default 8000); APP_MODE=exit makes it exit with code 3 at once.
``app.py --probe`` is the image's HEALTHCHECK: GET /health on 127.0.0.1:PORT.
"""

import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8000"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body, kind = b"ok", "text/plain"
        elif self.path == "/env":
            body, kind = json.dumps(dict(os.environ)).encode(), "application/json"
        elif self.path == "/":
            body, kind = b"hello from the test service", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print("app: " + format % args, flush=True)


def probe() -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def main() -> int:
    if os.environ.get("APP_MODE") == "exit":
        print("app: exiting on purpose (APP_MODE=exit)", flush=True)
        return 3
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"app: listening on 127.0.0.1:{PORT} as uid {os.getuid()}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(probe() if sys.argv[1:] == ["--probe"] else main())

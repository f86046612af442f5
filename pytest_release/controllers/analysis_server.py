"""``python -m pytest_release analysis-server``: the stages' verdicts as JSON, for the
``web`` metric provider of Argo Rollouts (``GET /verdict/<stage>?release=<id>``).

It reads the ledger the stages write (the file, or the Kubernetes ConfigMap of
``ledger.backend = "kubernetes"``) on every request and writes nothing. ``GET /healthz``
answers 200 once it serves.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from pytest_release.controllers.serving import http_server, serve, server_parser
from pytest_release.errors import LedgerError, ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.controllers.json_answer import ServerOutput
    from pytest_release.ledger.ledger import Ledger


def open_ledger(release_configs: Sequence[str], ledger_path: str | None, rootdir: Path) -> Ledger:
    """The ledger the stages of this configuration write."""
    from pytest_release.gates.canary import kubernetes as kubernetes_plugin
    from pytest_release.ledger.ledger import Ledger, open_store
    from pytest_release.workflow.workflow import load

    config = load(release_configs, rootdir)
    path = rootdir / (ledger_path or config.ledger.path)
    # The ledger backends plugins offer (the Kubernetes ConfigMap), without a pytest session.
    hook = SimpleNamespace(
        pytest_release_ledger_store=kubernetes_plugin.pytest_release_ledger_store
    )
    return Ledger(open_store(config.ledger, path, rootdir, hook))


def make_handler(ledger: Ledger, server_output: ServerOutput) -> type[BaseHTTPRequestHandler]:
    from pytest_release.controllers.json_answer import JsonHandler
    from pytest_release.controllers.verdict import verdict_document

    class Handler(JsonHandler):
        output = server_output

        def answer_get(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            release = (parse_qs(url.query).get("release") or [""])[0]
            if len(parts) != 2 or parts[0] != "verdict" or not parts[1] or not release:
                self.send_json(
                    404,
                    {"error": f"unknown path {url.path!r}: ask GET /verdict/<stage>?release=<id>"},
                )
                return
            try:
                entry = ledger.latest(release, parts[1])
            except LedgerError as exc:
                # The ledger cannot be read: an error (the metric errors), never a verdict.
                self.send_json(503, {"error": f"the ledger cannot be read: {exc}"})
                return
            self.send_json(200, verdict_document(parts[1], release, entry))

    return Handler


def parser() -> argparse.ArgumentParser:
    return server_parser(
        "python -m pytest_release analysis-server",
        "Serve the stages' verdicts as JSON for the Argo Rollouts web provider.",
    )


def main(argv: Sequence[str], rootdir: Path | None = None) -> int:
    from pytest_release.workflow.workflow import load

    args = parser().parse_args(argv)
    root = rootdir or Path.cwd()
    try:
        ledger = open_ledger(args.release_config, args.ledger, root)
        secrets = load(args.release_config, root).secrets
        server = http_server(args, secrets, partial(make_handler, ledger))
    except (ReleaseConfigError, LedgerError, ValueError, OSError) as exc:
        print(f"pytest_release analysis-server: {exc}", file=sys.stderr)
        return 2
    return serve(server, "analysis-server")

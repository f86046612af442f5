"""The controller commands of ``python -m pytest_release`` (one entry, so that the
top-level command table needs one line per command)."""

from __future__ import annotations

from collections.abc import Sequence


def main(command: str, argv: Sequence[str]) -> int:
    if command == "argo-rollouts":
        from pytest_release.controllers import argo_cli

        return argo_cli.main(argv)
    if command == "argo-status":
        from pytest_release.controllers import argo_status

        return argo_status.main(argv)
    if command == "flagger":
        from pytest_release.controllers import flagger_cli

        return flagger_cli.main(argv)
    if command == "webhook":
        from pytest_release.controllers import webhook

        return webhook.main(argv)
    from pytest_release.controllers import analysis_server

    return analysis_server.main(argv)

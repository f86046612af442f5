"""The parser every ``python -m pytest_release COMMAND`` that reads the release
configuration starts from: its ``--release-config`` option, the same as pytest's."""

from __future__ import annotations

import argparse


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser for ``prog`` with ``--release-config`` (repeatable, as for pytest; the
    value is ``args.release_config``, a list of paths, empty for the default)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "--release-config",
        action="append",
        default=[],
        metavar="FILE",
        help="release configuration layers, as given to pytest (repeatable; default: "
        "[tool.pytest-release] of pyproject.toml)",
    )
    return p

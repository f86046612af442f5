"""What every ``python -m pytest_release COMMAND`` that reads the release configuration
shares: its ``--release-config`` option (the same as pytest's), and where a generating
command writes (``-o PATH`` or stdout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def write_output(text: str, output: str | None, root: Path) -> None:
    """``text`` written to ``root/output`` (its directory made), or to stdout."""
    if output:
        out = root / output
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def comma_separated(text: str | None) -> tuple[str, ...]:
    """The names of an option such as ``--stages=canary-1,canary-2`` (blanks dropped)."""
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())

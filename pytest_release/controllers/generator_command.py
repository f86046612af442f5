"""What the commands generating a controller's resources (``argo-rollouts``, ``flagger``)
share: load the release configuration, build the YAML, say why not (exit code 2), write
it to ``-o PATH`` or stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_release.config.command_line import write_output
from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config import ReleaseConfig


def generate(
    command: str,
    args: argparse.Namespace,
    rootdir: Path | None,
    build: Callable[[ReleaseConfig], str],
    warning: str | None = None,
) -> int:
    """Write what ``build`` makes of the configuration ``args`` name; ``warning`` goes to
    stderr once it is built.  The exit code: 0, or 2 when the configuration is refused."""
    from pytest_release.workflow.workflow import load

    root = rootdir or Path.cwd()
    try:
        text = build(load(args.release_config, root))
    except (ReleaseConfigError, ValueError, OSError) as exc:
        print(f"pytest_release {command}: {exc}", file=sys.stderr)
        return 2
    if warning is not None:
        print(f"pytest_release {command}: warning: {warning}", file=sys.stderr)
    write_output(text, args.output, root)
    return 0

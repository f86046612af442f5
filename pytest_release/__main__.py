"""``python -m pytest_release COMMAND``: see :mod:`pytest_release.cli.main`."""

from __future__ import annotations

import sys

from pytest_release.cli.main import main

if __name__ == "__main__":
    sys.exit(main())

"""What the tests of the controller generators (``argo-rollouts``, ``flagger``) share:
running one in a project, and the test that bad input is an error naming the value and
the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# A generator's entry point: its arguments and the project's directory -> its exit status.
Main = Callable[..., int]


def generate(
    main: Main, root: Path, capsys: pytest.CaptureFixture[str], toml: str, *args: str
) -> tuple[int, str, str]:
    """``main`` with ``args`` in the project ``root`` whose pyproject.toml is ``toml``: its
    exit status, what it printed and what it wrote on stderr."""
    (root / "pyproject.toml").write_text(toml, encoding="utf-8")
    code = main(list(args), rootdir=root)
    out, err = capsys.readouterr()
    return code, out, err


def bad_input_test(main: Main, cases: list[Any]) -> Callable[..., None]:
    """The test (to bind to a ``test_`` name of the generator's test module) that each
    (project, arguments, message) of ``cases`` makes ``main`` exit 2 with ``message`` on
    stderr."""

    @pytest.mark.parametrize(("toml", "args", "message"), cases)
    def test(
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        toml: str,
        args: list[str],
        message: str,
    ) -> None:
        code, _, err = generate(main, tmp_path, capsys, toml, *args)
        assert code == 2
        assert message in err, err

    return test

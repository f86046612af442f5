"""The public API: what ``pytest_release`` exports, and the gate example of docs/api.md
run as it is written there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pytest_release

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def documented_files() -> dict[str, str]:
    """The fenced code blocks of docs/api.md whose first line names a file."""
    files = {}
    for body in re.findall(r"```(?:python|toml)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        first, _, rest = body.partition("\n")
        name = first.removeprefix("# ").strip()
        files[name] = rest
    return files


def example_files() -> dict[str, str]:
    """The gate example's files (the plug-ins' are files of examples/)."""
    return {k: v for k, v in documented_files().items() if not k.startswith("examples/")}


def test_the_documented_plugins_are_the_examples_byte_for_byte() -> None:
    shown = {k: v for k, v in documented_files().items() if k.startswith("examples/")}
    assert set(shown) == {
        "examples/platform-plugin/pyproject.toml",
        "examples/platform-plugin/procs_platform.py",
        "examples/evidence-plugin/pyproject.toml",
        "examples/evidence-plugin/counts_evidence.py",
    }
    for name, text in shown.items():
        assert text == (DOC.parents[1] / name).read_text(encoding="utf-8"), (
            f"docs/api.md shows another {name} than the one in the repository"
        )


def test_every_exported_name_resolves_and_errors_share_one_root() -> None:
    for name in pytest_release.__all__:
        assert getattr(pytest_release, name) is not None, name
    errors = [
        getattr(pytest_release, name)
        for name in pytest_release.__all__
        if name.endswith("Error") or name == "GateCheckFailed"
    ]
    assert len(errors) == 9
    assert all(issubclass(error, pytest_release.ReleaseError) for error in errors)
    assert issubclass(pytest_release.PlatformError, pytest_release.RolloutError)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pytest_release.Nope  # type: ignore[attr-defined]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_documented_gate_runs_as_written(pytester: pytest.Pytester, xdist: list[str]) -> None:
    files = example_files()
    assert set(files) == {"conftest.py", "pyproject.toml"}
    for name, text in files.items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    (pytester.path / "README.md").write_text("# demo\n", encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "--stage=docs-check", "--release-id=r1", "-p", "no:cacheprovider", *xdist
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*CHANGELOG.md is missing: add it to the repository*"])
    result.stdout.fnmatch_lines(
        ["*release stage docs-check: failed*", "*gate docs: failed*1 passed, 1 failed*"]
    )
    junit = (pytester.path / "reports" / "docs-check.xml").read_text(encoding="utf-8")
    assert 'name="README.md"' in junit
    assert 'name="CHANGELOG.md"' in junit

    (pytester.path / "CHANGELOG.md").write_text("1.0: first\n", encoding="utf-8")
    passed = pytester.runpytest_subprocess(
        "--stage=docs-check", "--release-id=r2", "-p", "no:cacheprovider", *xdist
    )
    assert passed.ret == 0
    passed.stdout.fnmatch_lines(["*release stage docs-check: passed*"])

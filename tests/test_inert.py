"""Without --stage the plugin is inert: same collection, selection, outcomes, output."""

from __future__ import annotations

import re

import pytest

from tests.support.spine import project

FILES = {
    "tests/unit/test_mixed.py": """
        import pytest

        def test_pass():
            print("hello")

        def test_fail():
            assert [1, 2] == [1, 3]

        @pytest.mark.skip(reason="not today")
        def test_skip():
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n):
            assert n < 3

        @pytest.mark.gate("lint")
        def test_in_a_gate():
            pass

        @pytest.fixture
        def broken():
            raise RuntimeError("setup boom")

        def test_error(broken):
            pass
    """,
    "tests/test_other.py": """
        import warnings
        def test_warns():
            warnings.warn(UserWarning("careful"))
    """,
}

_VOLATILE = [
    (re.compile(r"\d+\.\d+s"), "N.NNs"),
    (re.compile(r"^plugins: .*$", re.M), "plugins: ..."),
    (re.compile(r"/tmp/\S+"), "/tmp/PATH"),
    (re.compile(r"0x[0-9a-f]+"), "0xADDR"),
]


def _normalise(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _project(pytester: pytest.Pytester) -> None:
    project(pytester, "[stages.uat]\ngates = ['lint', 'unit']\n", **FILES)
    pyproject = pytester.path / "pyproject.toml"
    # The plugin registers the `gate` marker; register it for the plain run too, so the
    # comparison is about behaviour, not about an unknown-marker warning.
    pyproject.write_text(
        pyproject.read_text().replace(
            'markers = ["slow: slow tests"]', 'markers = ["slow: slow tests", "gate(name): gate"]'
        )
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="run"),
        pytest.param(["-k", "param or fail", "-rA"], id="keyword"),
        pytest.param(["--collect-only", "-q"], id="collect"),
        pytest.param(["-x"], id="exitfirst"),
        pytest.param(["-m", "gate"], id="marker"),
    ],
)
def test_output_is_plain_pytests(pytester: pytest.Pytester, args: list[str]) -> None:
    _project(pytester)
    plain = pytester.runpytest_subprocess("-p", "no:release", "-p", "no:cacheprovider", *args)
    with_plugin = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert with_plugin.ret == plain.ret
    assert _normalise(with_plugin.stdout.str()) == _normalise(plain.stdout.str())
    assert _normalise(with_plugin.stderr.str()) == _normalise(plain.stderr.str())
    assert not (pytester.path / "reports").exists()
    assert not (pytester.path / ".pytest-release").exists()


def test_outcomes_are_plain_pytests_under_xdist(pytester: pytest.Pytester) -> None:
    _project(pytester)
    plain = pytester.runpytest_subprocess("-p", "no:release", "-n", "2", "-p", "no:cacheprovider")
    with_plugin = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    assert with_plugin.ret == plain.ret == 1
    assert with_plugin.parseoutcomes() == plain.parseoutcomes()
    assert with_plugin.parseoutcomes()["passed"] == 5


GENERIC_NAMES = ["--image", "--gate", "--ledger", "--reports-dir"]


@pytest.mark.parametrize("name", GENERIC_NAMES)
def test_a_conftest_that_defines_a_generic_option_name_still_runs(
    pytester: pytest.Pytester, name: str
) -> None:
    # The plugin registers --release-* names; the short ones only when nobody else did.
    dest = name.lstrip("-").replace("-", "_")
    pytester.makeconftest(
        f"""
        def pytest_addoption(parser):
            parser.addoption("{name}", dest="suite_{dest}", default="unset")

        def pytest_report_header(config):
            return "suite option: " + config.getoption("suite_{dest}")
        """
    )
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"{name}=mine")
    assert plain.ret == 0, plain.stderr.str()
    plain.stdout.fnmatch_lines(["suite option: mine"])


def _stage_one_releases(pytester: pytest.Pytester, image: str, *args: str) -> None:
    """Stage ``one`` (a ``unit`` gate of the project's tests) of release r1, run with
    ``args``, passes and releases ``image``."""
    pytester.makepyprojecttoml(
        '[tool.pytest-release.gates.unit]\npaths = ["test_*.py"]\n'
        '[tool.pytest-release.stages.one]\ngates = ["unit"]\nrequires = []\n'
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--stage=one", "--release-id=r1", *args
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"image: {image}"])


def test_the_release_names_work_beside_a_suites_own_image_option(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--image", dest="suite_image", default="unset")

        def test_nothing():
            pass
        """
    )
    pytester.makepyfile(
        test_a="""
        def test_a(request):
            assert request.config.getoption("suite_image") == "theirs"
            assert request.config.getoption("release_image") == "ours:1"
        """
    )
    _stage_one_releases(pytester, "ours:1", "--image=theirs", "--release-image=ours:1")


def test_the_short_names_are_aliases_when_free(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    _stage_one_releases(pytester, "ours:2", "--image=ours:2", "--gate", "unit", "--reports-dir=out")
    assert (pytester.path / "out" / "one.xml").is_file()

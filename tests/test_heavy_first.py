"""tests/support/heavy_first.py, the order this suite's tests run in under ``-n 2``: the
marked heavy tests first, heaviest first, each followed by a light one, a group's tests
side by side; and xdist hands the tests out one by one unless the command line chose a
chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = """
from tests.support.heavy_first import MARKER_HELP, heaviest_first, small_chunks

def pytest_configure(config):
    config.addinivalue_line("markers", MARKER_HELP)
    small_chunks(config)

def pytest_collection_modifyitems(items):
    heaviest_first(items)
"""


def test_heavy_tests_first_heaviest_first_each_before_a_light_one_a_group_together(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_order="""
        import pytest

        def test_light_1(): pass

        @pytest.mark.heavy(100)
        def test_medium(): pass

        def test_light_2(): pass

        @pytest.mark.heavy(80, group="ports")
        def test_group_a(): pass

        @pytest.mark.heavy(300)
        def test_heaviest(): pass

        @pytest.mark.heavy(70, group="ports")
        def test_group_b(): pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    order = [line.split("::")[1] for line in result.outlines if "::" in line]
    # The group (80 + 70 = 150) goes before the 100 s test; a light test after each heavy
    # one or group (xdist's first two items, a worker's first, hold one heavy test), as
    # long as there are light ones; unmarked tests keep their order.
    assert order == [
        "test_heaviest", "test_light_1", "test_group_a", "test_group_b", "test_light_2",
        "test_medium",
    ]  # fmt: skip


@pytest.mark.parametrize(("args", "workers"), [((), 2), (("--maxschedchunk=5",), 1)])
def test_under_xdist_the_heavy_tests_go_to_both_workers_unless_a_chunk_is_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], workers: int
) -> None:
    """Two heavy tests before forty light ones: handed out one by one, the two workers
    start with one each (tests/test_pipeline.py's two pipelines run at the same time); in
    chunks of five (what xdist would choose for 42 tests) the first worker gets both."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import tests.support
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_spread="""
        import time
        import pytest

        @pytest.mark.parametrize("n", range(40))
        def test_light(n): pass

        @pytest.mark.heavy(10)
        @pytest.mark.parametrize("n", range(2))
        def test_heavy(n): time.sleep(0.5)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-v", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=42)
    ran_on = {
        line.split()[0] for line in result.outlines if "PASSED test_spread.py::test_heavy" in line
    }
    assert len(ran_on) == workers, result.outlines

"""Peak memory against the number of tests (``overhead.py``'s memory figure).

Plain pytest keeps something per test too (its items, the terminal reporter's reports),
so peak RSS grows with the suite in every run; what a stage may add is a constant, not
a slope.  Each size is a generated project of trivial tests; plain and stage runs
alternate (order rotated per round) and the slope between two sizes is the growth of
the median peak RSS divided by the tests added.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path

from _common import Figure, fmt_ratio, fmt_spread, interleaved, paired_ratios, summarize

MEMORY_MODES = ("plain", "stage")


def memory_slope(
    figure: Figure,
    sizes: Sequence[int],
    rounds: int,
    xdist_modes: Sequence[bool],
    make_project: Callable[[Path, int], None],
    measure: Callable[[str, bool, Path], float],
) -> None:
    """Fill ``figure`` with the peak RSS table, the slope table and a summary line;
    ``measure(mode, xdist, project)`` runs pytest once and returns its peak RSS (MiB)."""
    root = Path(tempfile.mkdtemp(prefix="pytest-release-bench-memory-"))
    rss: dict[tuple[int, bool, str], list[float]] = {}
    try:
        for size in sizes:
            project = root / f"p{size}"
            make_project(project, size)
            for xdist in xdist_modes:
                variants: dict[str, Callable[[], float]] = {}
                for mode in MEMORY_MODES:
                    values = rss.setdefault((size, xdist, mode), [])
                    variants[mode] = lambda m=mode, v=values, x=xdist, p=project: _keep(  # type: ignore[misc]
                        v, measure(m, x, p)
                    )
                print(f"overhead: memory, {size} tests{' -n 2' if xdist else ''}", flush=True)
                interleaved(variants, rounds)
            shutil.rmtree(project, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak = figure.table(
        "Peak RSS (MiB, largest process: pytest or an xdist worker / the controller) by "
        "number of trivial tests, plain `pytest -p no:release` against `pytest --stage=all` "
        "in the same rounds",
        ["tests", "-n", "plain", "stage", "stage minus plain", "ratio", "n"],
    )
    slope = figure.table(
        "Slope of peak RSS in the number of tests (growth of the median between two sizes "
        "divided by the tests added): the stage's slope against plain pytest's",
        ["from", "to", "-n", "plain (KiB/test)", "stage (KiB/test)", "stage minus plain"],
    )
    summary = []
    for xdist in xdist_modes:
        n = "2" if xdist else "-"
        medians: dict[tuple[int, str], float] = {}
        for size in sizes:
            plain, stage = rss[(size, xdist, "plain")], rss[(size, xdist, "stage")]
            medians[(size, "plain")] = summarize(plain).median
            medians[(size, "stage")] = summarize(stage).median
            peak.rows.append(
                [
                    str(size),
                    n,
                    fmt_spread(summarize(plain), _mib),
                    fmt_spread(summarize(stage), _mib),
                    _mib(medians[(size, "stage")] - medians[(size, "plain")]),
                    fmt_ratio(summarize(paired_ratios(stage, plain))),
                    str(len(plain)),
                ]
            )
        for low, high in pairwise(sizes):
            per = per_test_kib(medians, low, high)
            slope.rows.append(
                [
                    str(low),
                    str(high),
                    n,
                    f"{per['plain']:.2f}",
                    f"{per['stage']:.2f}",
                    f"{per['stage'] - per['plain']:+.2f}",
                ]
            )
        first, last = sizes[0], sizes[-1]
        per = per_test_kib(medians, first, last)
        summary.append(
            f"{'serial' if not xdist else '-n 2'}: plain {per['plain']:.2f} KiB/test, stage "
            f"{per['stage']:.2f} KiB/test ({per['stage'] - per['plain']:+.2f})"
        )
    figure.summary.append(
        f"peak RSS slope from {sizes[0]} to {sizes[-1]} trivial tests: " + "; ".join(summary)
    )
    figure.raw["memory_rss_mib"] = {
        f"{size}{' -n 2' if xdist else ''} {mode}": values
        for (size, xdist, mode), values in rss.items()
    }


def _keep(values: list[float], value: float) -> float:
    values.append(value)
    return value


def _mib(value: float) -> str:
    return f"{value:.1f}"


def per_test_kib(medians: Mapping[tuple[int, str], float], low: int, high: int) -> dict[str, float]:
    """KiB per test added between ``low`` and ``high`` tests, per mode."""
    return {
        mode: (medians[(high, mode)] - medians[(low, mode)]) * 1024 / (high - low)
        for mode in MEMORY_MODES
    }

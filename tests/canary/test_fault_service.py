"""The fault service's error draws: deterministic every n-th request by default, random
(and reproducible with a seed) on request, as the canary benchmark records them."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "services" / "fault_service.py"


def _service() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_service_under_test", SERVICE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failures(*argv: str, requests: int = 4000) -> list[int]:
    service = _service()
    state = service.FaultState(service.parse_args(["--port", "1", *argv]))
    failed = []
    for _ in range(requests):
        n, fail = state.next_request()
        if fail:
            failed.append(n)
    return failed


def test_default_draws_fail_every_nth_request() -> None:
    assert _failures("--error-rate", "0.05", requests=100) == [20, 40, 60, 80, 100]


def test_random_draws_are_random_and_reproducible_with_a_seed() -> None:
    args = ("--error-rate", "0.05", "--error-draws", "random", "--seed", "7")
    first = _failures(*args, "--version", "v2")
    # 4000 draws at 5 %: 200 expected; the bounds are about 6 standard deviations wide.
    assert 120 < len(first) < 290
    gaps = {b - a for a, b in itertools.pairwise(first)}
    assert len(gaps) > 10, "not every n-th request"
    assert _failures(*args, "--version", "v2") == first, "same seed, same draws"
    assert _failures(*args, "--version", "v1") != first, "each version its own sequence"


def test_background_errors_add_to_the_fault() -> None:
    failed = _failures(
        "--error-rate", "0.02", "--background-error-rate", "0.02", "--seed", "3", "--version", "x"
    )
    every_nth = set(range(50, 4001, 50))
    assert every_nth <= set(failed)
    assert 20 < len(set(failed) - every_nth) < 150  # 2 % of 4000 at random: 80 expected


def test_a_bad_draw_mode_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAULT_ERROR_DRAWS", "sometimes")
    with pytest.raises(SystemExit):
        _service().parse_args(["--port", "1"])
    assert (
        "FAULT_ERROR_DRAWS must be every-nth or random, got 'sometimes'" in capsys.readouterr().err
    )

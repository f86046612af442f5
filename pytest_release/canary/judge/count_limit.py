"""What the checks of a count against a configured limit share (the longest run of failed
/health probes, restarts): no evidence at all is insufficient and names the key that
turns the check off; a count over the limit fails, else it passes."""

from __future__ import annotations

from pytest_release.canary.judge.verdicts import CheckResult, format_window


def no_evidence(
    name: str, limit: int, unit: str, window: tuple[float, float], missing: str, key: str
) -> CheckResult:
    """Insufficient: ``missing`` (what was not seen) over ``window``."""
    return CheckResult.insufficient(
        name,
        threshold=float(limit),
        unit=unit,
        window=window,
        samples=0,
        message=f"{missing} over {format_window(*window)} (set judge.{key} = false to "
        "disable this check)",
    )


def count_result(
    name: str,
    count: int,
    limit: int,
    unit: str,
    window: tuple[float, float],
    samples: int,
    message: str,
    source: str = "sampler",
) -> CheckResult:
    """fail when ``count`` is over ``limit``, else pass; ``message`` says which."""
    return CheckResult(
        name=name,
        verdict="fail" if count > limit else "pass",
        value=float(count),
        threshold=float(limit),
        unit=unit,
        window_start=window[0],
        window_end=window[1],
        samples=samples,
        message=message,
        source=source,
    )

"""How a check's result names the evidence it judged."""

from __future__ import annotations

from dataclasses import replace

from pytest_release.canary.judge.evidence import SAMPLER, SourceRequests
from pytest_release.canary.judge.verdicts import CheckResult


def labelled(requests: SourceRequests, name: str, result: CheckResult) -> CheckResult:
    """``result`` named ``name`` and for its source; the message of a check on counted
    evidence says which it is."""
    if requests.source == SAMPLER:
        return replace(result, name=name)
    return replace(
        result, name=name, source=requests.source, message=f"{requests.label}: {result.message}"
    )


def unavailable(requests: SourceRequests, name: str, start: float, end: float) -> CheckResult:
    """An insufficient result: ``requests`` cannot be judged at this look."""
    return labelled(
        requests,
        name,
        CheckResult.insufficient(
            name,
            threshold=None,
            unit="",
            window=(start, end),
            samples=0,
            message=f"{name.rsplit('.', 1)[-1]}: {requests.unavailable}",
        ),
    )

"""How a check's result names the evidence it judged."""

from __future__ import annotations

from dataclasses import replace

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import SAMPLER, SourceRequests
from pytest_release.canary.judge.verdicts import CheckResult


def check_name(config: JudgeConfig, source: str, name: str) -> str:
    """Checks of the first source in ``judge.evidence`` keep their names; the others' are
    ``<source>.<check>``."""
    return name if config.evidence[0] == source else f"{source}.{name}"


def labelled(config: JudgeConfig, requests: SourceRequests, result: CheckResult) -> CheckResult:
    """``result`` named for its source; a counted source's message says which it is."""
    name = check_name(config, requests.source, result.name)
    if requests.source == SAMPLER:
        return replace(result, name=name)
    return replace(
        result, name=name, source=requests.source, message=f"{requests.label}: {result.message}"
    )


def unavailable(
    config: JudgeConfig, requests: SourceRequests, name: str, why: str, start: float, end: float
) -> CheckResult:
    """An insufficient result: ``requests`` cannot be judged (``why``)."""
    return labelled(
        config,
        requests,
        CheckResult.insufficient(
            name,
            threshold=None,
            unit="",
            window=(start, end),
            samples=0,
            message=f"{name}: {why}",
        ),
    )

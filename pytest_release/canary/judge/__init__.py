"""The canary judge: a plain list of checks over the evidence of a hold (see
:mod:`.judge` and docs/judge.md)."""

from __future__ import annotations

from pytest_release.canary.judge.config import ComparisonConfig, EvidenceSource, JudgeConfig
from pytest_release.canary.judge.judge import Judge, planned_looks
from pytest_release.canary.judge.verdicts import (
    VERDICTS,
    CanaryVerdict,
    CheckResult,
    Verdict,
    format_ms,
    format_percent,
    format_seconds,
    format_window,
)

__all__ = [
    "VERDICTS",
    "CanaryVerdict",
    "CheckResult",
    "ComparisonConfig",
    "EvidenceSource",
    "Judge",
    "JudgeConfig",
    "Verdict",
    "format_ms",
    "format_percent",
    "format_seconds",
    "format_window",
    "planned_looks",
]

"""What the judge returns: a verdict per check (:class:`CheckResult`) and per interval or
stage (:class:`CanaryVerdict`), and how they are written for people."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Verdict = Literal["pass", "fail", "insufficient"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "insufficient")
SEVERITY: Mapping[str, int] = {"pass": 0, "insufficient": 1, "fail": 2}


@dataclass(frozen=True)
class CheckResult:
    """One check of one interval (or of the stage): what was measured against what."""

    name: str
    verdict: Verdict
    value: float | None
    threshold: float | None
    unit: str
    window_start: float
    window_end: float
    samples: int
    message: str
    # True when stable, measured in the same window, is over the threshold too: the
    # environment, not the canary (the verdict then follows judge.stable_exceeds).
    stable_exceeds: bool = False
    # Extra (key, value) pairs reported as JUnit properties judge.<check>.<key>, e.g. the
    # failed /health probes per replica.
    details: tuple[tuple[str, str], ...] = ()
    # Which evidence the check judged: sampler, router, prometheus, several joined by
    # "+" (sampler+router), platform or alertmanager.
    source: str = "sampler"
    # True for an insufficient result only because the hold has not gathered enough
    # evidence yet (e.g. fewer than judge.min_requests canary requests so far): a later
    # look can decide, so the stage does not count it against max_insufficient_intervals.
    pending: bool = False

    @classmethod
    def insufficient(
        cls,
        name: str,
        *,
        threshold: float | None,
        unit: str,
        window: tuple[float, float],
        samples: int,
        message: str,
        source: str = "sampler",
        pending: bool = False,
    ) -> CheckResult:
        """Not enough data for the check: never a pass, the message says what is missing."""
        return cls(
            name,
            "insufficient",
            None,
            threshold,
            unit,
            window[0],
            window[1],
            samples,
            message,
            source=source,
            pending=pending,
        )


@dataclass(frozen=True)
class CanaryVerdict:
    verdict: Verdict
    checks: tuple[CheckResult, ...]
    window_start: float
    window_end: float

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def pending(self) -> bool:
        """Insufficient only because the hold has not gathered enough evidence yet."""
        lacking = [c for c in self.checks if c.verdict == "insufficient"]
        return self.verdict == "insufficient" and bool(lacking) and all(c.pending for c in lacking)

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.verdict == "fail")

    def properties(self) -> list[tuple[str, str]]:
        """JUnit ``user_properties``: the verdict, then value/threshold/window/samples per
        check, all as strings (``judge.<check>.<field>``)."""
        props: list[tuple[str, str]] = [
            ("judge.verdict", self.verdict),
            ("judge.window", format_window(self.window_start, self.window_end)),
            ("judge.window_start", iso_text(self.window_start)),
            ("judge.window_end", iso_text(self.window_end)),
        ]
        for check in self.checks:
            prefix = f"judge.{check.name}"
            props.extend(
                [
                    (f"{prefix}.verdict", check.verdict),
                    (f"{prefix}.value", number_text(check.value)),
                    (f"{prefix}.threshold", number_text(check.threshold)),
                    (f"{prefix}.unit", check.unit),
                    (f"{prefix}.window", format_window(check.window_start, check.window_end)),
                    (f"{prefix}.samples", str(check.samples)),
                    (f"{prefix}.source", check.source),
                ]
            )
            if check.stable_exceeds:
                props.append((f"{prefix}.stable_exceeds", "true"))
            if check.pending:
                props.append((f"{prefix}.pending", "true"))
            props.extend((f"{prefix}.{key}", value) for key, value in check.details)
        return props

    def failure_message(self) -> str:
        """Human text: every failing check with value and threshold (or, for an
        insufficient verdict, what evidence was missing)."""
        window = format_window(self.window_start, self.window_end)
        if self.verdict == "fail":
            return "\n".join(c.message for c in self.checks if c.verdict == "fail")
        if self.verdict == "insufficient":
            missing = [c.message for c in self.checks if c.verdict == "insufficient"]
            lines = [f"insufficient evidence over {window}:"]
            lines.extend(f"  {m}" for m in missing)
            return "\n".join(lines) if missing else f"insufficient evidence over {window}"
        return f"all {len(self.checks)} canary checks passed over {window}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for xdist workers, run dirs, the ledger)."""
        return {
            "verdict": self.verdict,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryVerdict:
        return cls(
            verdict=parse_verdict(data["verdict"]),
            window_start=float(data["window_start"]),
            window_end=float(data["window_end"]),
            checks=tuple(
                CheckResult(
                    **{
                        **c,
                        "verdict": parse_verdict(c["verdict"]),
                        "details": tuple((str(k), str(v)) for k, v in c.get("details", ())),
                    }
                )
                for c in data["checks"]
            ),
        )


def parse_verdict(value: object) -> Verdict:
    for verdict in VERDICTS:
        if value == verdict:
            return verdict
    raise ValueError(f"unknown verdict {value!r}, expected one of {', '.join(VERDICTS)}")


# -- formatting ------------------------------------------------------------------------


def clock_text(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(timestamp))


def iso_text(timestamp: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{whole}.{round((timestamp % 1) * 1000) % 1000:03d}Z"


def format_window(start: float, end: float) -> str:
    return f"{clock_text(start)}-{clock_text(end)} UTC"


def format_percent(fraction: float) -> str:
    percent = fraction * 100.0
    if percent == 0.0 or percent >= 0.1:
        return f"{percent:.1f}%"
    return f"{percent:.2g}%"


def format_ms(value: float) -> str:
    return f"{value:.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


def format_seconds(value: float) -> str:
    return f"{value:.0f} s" if abs(value) >= 10 else f"{value:.1f} s"


def format_confidence(alpha: float) -> str:
    """``1 - alpha`` as a percentage with the digits that matter (99.98%)."""
    confidence = (1.0 - alpha) * 100.0
    for digits in range(0, 8):
        text = f"{confidence:.{digits}f}"
        if float(text) < 100.0 and abs(float(text) - confidence) <= alpha * 100.0 / 2:
            return f"{text}%"
    return f"{confidence:.8f}%"


def threshold_text(name: str, limit: float, unit: str) -> str:
    if name == "p95_latency":
        return "the p95 limit"
    return format_percent(limit)


def number_text(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe verdict: fail over insufficient over pass."""
    found: Verdict = "pass"
    for verdict in verdicts:
        if SEVERITY[verdict] > SEVERITY[found]:
            found = verdict
    return found

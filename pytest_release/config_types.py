"""Field types shared by every configuration model: durations and HTTP paths.

``Duration`` accepts ``90``, ``"90s"``, ``"15m"``, ``"1.5h"`` or ``"250ms"`` and stores
seconds; ``PositiveDuration`` also refuses 0; ``HttpPath`` must start with ``/``.
Infinite and NaN durations are refused: a hold of ``inf`` never ends.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

__all__ = ["Duration", "HttpPath", "PositiveDuration", "check_http_path", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_EXPECTED = "expected a duration such as 30, '30s', '15m' or '1h'"


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1.5h"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"{_EXPECTED}, got {value!r}: a duration must be finite")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be more than 0 seconds, got {value!r}")
    return seconds


def check_http_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must start with '/', e.g. '/health', got {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_positive_duration)]
HttpPath = Annotated[str, AfterValidator(check_http_path)]

"""Field types shared by every configuration model: durations, HTTP paths and URLs and
environment variables.

``Duration`` accepts ``90``, ``"90s"``, ``"15m"``, ``"1.5h"`` or ``"250ms"`` and stores
seconds; ``PositiveDuration`` also refuses 0; ``HttpPath`` must start with ``/``.
A duration is 0 or between 1 ms and 30 days: infinite, NaN and absurd values are
refused at load time, because a hold of ``inf`` never ends and ``1e308 / 1e-300``
overflows every later computation (an INTERNALERROR, not a message).
``EnvVars`` is a mapping that becomes a process's environment: its names must be
portable environment variable names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, cast

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

__all__ = [
    "MAX_DURATION",
    "MIN_DURATION",
    "After",
    "Before",
    "Bounds",
    "Duration",
    "EnvVars",
    "EnvVarsPerKey",
    "HttpPath",
    "PositiveDuration",
    "check_env_vars",
    "check_env_vars_per_key",
    "check_http_path",
    "check_http_url",
    "parse_duration",
    "parse_positive_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_EXPECTED = "expected a duration such as 30, '30s', '15m' or '1h'"

# The shortest non-zero duration: the finest unit a duration is written in.
MIN_DURATION = 0.001
# The longest: far beyond any hold or timeout a release waits for, and small enough that
# deadlines, interval counts and sleeps computed from it stay ordinary floats.
MAX_DURATION = 30 * 24 * 3600.0
_RANGE = "a duration is 0 or from 1ms to 30 days (2592000s)"


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
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is too long: {_RANGE}")
    if 0 < seconds < MIN_DURATION:
        raise ValueError(f"{value!r} is too short: {_RANGE}")
    return seconds


def parse_positive_duration(value: object, refusal: str = "must be more than 0 seconds") -> float:
    """Seconds, as :func:`parse_duration`, but not 0; ``refusal`` is a key's own wording
    of why 0 is refused (its error message goes on with the value given)."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{refusal}, got {value!r}")
    return seconds


def check_http_url(value: str, example: str) -> str:
    """An http(s) base URL, without a trailing '/' (API paths are appended to it)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL such as {example}, got {value!r}")
    return value.rstrip("/")


def check_http_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must start with '/', e.g. '/health', got {value!r}")
    return value


# POSIX portable names: what every shell, Docker and Kubernetes accept as a variable.
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_vars(value: dict[str, str]) -> dict[str, str]:
    """Names of a mapping that becomes a process's environment must be variable names (a
    name with '=' or a space is silently mangled or refused by the OS, a NUL ends it)."""
    for name, text in value.items():
        if not _ENV_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a valid environment variable name: use letters, digits "
                "and '_', not starting with a digit (e.g. SHOP_URL)"
            )
        if "\x00" in text:
            raise ValueError(
                f"the value of {name} contains a NUL character, which no process environment "
                "can hold; remove it"
            )
    return value


def check_env_vars_per_key(value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``check_env_vars`` of every mapping of a table of them (e.g. per image)."""
    for key, env in value.items():
        try:
            check_env_vars(env)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return value


# The annotations below are what pydantic's BeforeValidator, AfterValidator and
# Field(ge=, le=) do, written so that defining a table imports no pydantic: pydantic
# asks an annotation for its schema only when it validates (one process, once), and a
# stage that reads a cached plan (:mod:`.plan_cache`) never validates.


class Before:
    """Run ``check`` on the raw value before the type's own validation."""

    # A plain class, not a dataclass: defining a dataclass costs a stage's start-up
    # about a millisecond, and these are defined in every process.
    __slots__ = ("check",)

    def __init__(self, check: Callable[[Any], Any]) -> None:
        self.check = check

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(self.check, handler(source))


class After(Before):
    """Run ``check`` on the value the type's own validation produced."""

    __slots__ = ()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))


class Bounds:
    """A number at least ``ge`` and at most ``le`` (pydantic's own messages)."""

    __slots__ = ("ge", "le")

    def __init__(self, ge: float | None = None, le: float | None = None) -> None:
        self.ge, self.le = ge, le

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema: dict[str, Any] = dict(handler(source))  # an int or float schema
        if self.ge is not None:
            schema["ge"] = self.ge
        if self.le is not None:
            schema["le"] = self.le
        return cast("CoreSchema", schema)


Duration = Annotated[float, Before(parse_duration)]
PositiveDuration = Annotated[float, Before(parse_positive_duration)]
HttpPath = Annotated[str, After(check_http_path)]
EnvVars = Annotated[dict[str, str], After(check_env_vars)]
EnvVarsPerKey = Annotated[dict[str, dict[str, str]], After(check_env_vars_per_key)]

"""Fault knobs, so a "bad release" can be produced on purpose (canary demos and tests).

=========================  ===============================================
``SHOP_ERROR_RATE``        share of API/page requests answered 500 (0-1)
``SHOP_LATENCY_MS``        latency added to API/page requests
``SHOP_CRASH_AFTER``       the process exits after N API/page requests
``SHOP_FAIL_HEALTH``       ``/health`` answers 503 (``1``/``true``)
=========================  ===============================================
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field


class KnobError(ValueError):
    pass


def _number(env: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise KnobError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise KnobError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value


@dataclass
class Faults:
    error_rate: float = 0.0
    latency_ms: float = 0.0
    crash_after: int = 0
    fail_health: bool = False
    _served: int = 0
    _errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Faults:
        env = os.environ if env is None else env
        return cls(
            error_rate=_number(env, "SHOP_ERROR_RATE", 0, 1),
            latency_ms=_number(env, "SHOP_LATENCY_MS", 0, 600_000),
            crash_after=int(_number(env, "SHOP_CRASH_AFTER", 0, 1e12)),
            fail_health=env.get("SHOP_FAIL_HEALTH", "").strip().lower() in ("1", "true", "yes"),
        )

    def on_request(self) -> tuple[bool, bool]:
        """Count one API/page request: (answer with an error?, crash after answering?)."""
        with self._lock:
            self._served += 1
            fail = False
            # Deterministic spread: the error count tracks rate * requests exactly.
            if self.error_rate and self._errors < int(self._served * self.error_rate):
                self._errors += 1
                fail = True
            crash = bool(self.crash_after) and self._served >= self.crash_after
            return fail, crash

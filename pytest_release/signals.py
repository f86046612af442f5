"""SIGINT/SIGTERM held back while a rollback step runs: a rollback must not stop half-way."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def signals_deferred(*, reraise: bool = True) -> Iterator[list[int]]:
    """SIGINT/SIGTERM wait until the block ends; then they interrupt the session
    (``reraise``: ``KeyboardInterrupt``) or, at the very end of it, are dropped.  The
    signals received are yielded so the caller can record them."""
    received: list[int] = []

    def defer(signum: int, frame: Any) -> None:
        received.append(signum)

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, defer)
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received and reraise:
            raise KeyboardInterrupt(f"received signal {received[0]} during a rollback step")

"""Work a test runs beside what it tests, in a thread of its own, ended when the test
leaves the block."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def in_background(work: Callable[[threading.Event], None]) -> Iterator[None]:
    """``work(stop)`` in a daemon thread while the block runs; on leaving, ``stop`` is set
    and the thread joined (10 s at most: a daemon thread cannot hold the test up)."""
    stop = threading.Event()
    thread = threading.Thread(target=work, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)

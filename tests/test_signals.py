"""A stage's SIGINT is not lost when its KeyboardInterrupt lands in a finalizer.

A signal handler runs wherever the main thread is.  On the real Kubernetes node the
pipeline's forwarded SIGINT arrived while a urllib3 connection pool of the Kubernetes
client was being closed by its weakref finalizer; Python dropped the KeyboardInterrupt
there ("Exception ignored in: <finalize object>") and canary-1 held on with its canary
live.  The stage raises the interrupt again where it waits (the hold, each canary item).
"""

from __future__ import annotations

import signal
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_release.system.signals import StageSignals, raise_if_interrupted


@pytest.fixture
def stage_signals() -> Iterator[StageSignals]:
    """StageSignals installed in this process; the previous handlers come back after
    (``settle`` keeps them once a signal arrived, as a stopping stage must)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stage = StageSignals()
    stage.install()
    try:
        yield stage
    finally:
        stage.settle()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ConnectionPool:
    """Stands for an object the main thread finalizes (urllib3's pools are)."""


def test_an_interrupt_a_finalizer_swallowed_is_raised_again_where_the_stage_waits(
    stage_signals: StageSignals, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)
    stage_signals.arm()
    pool = ConnectionPool()
    # The real signal, delivered while the finalizer runs: its handler runs there.
    weakref.finalize(pool, signal.raise_signal, signal.SIGINT)
    del pool  # the finalizer runs now; Python drops what it raises
    assert stage_signals.received == [signal.SIGINT]
    assert [type(d.exc_value) for d in dropped] == [KeyboardInterrupt]
    with pytest.raises(KeyboardInterrupt, match="received signal 2"):
        raise_if_interrupted()
    with pytest.raises(KeyboardInterrupt):  # until the stage is recorded
        raise_if_interrupted()
    stage_signals.recorded()
    raise_if_interrupted()  # the record is final: nothing interrupts any more


def test_without_an_interrupted_stage_nothing_is_raised(stage_signals: StageSignals) -> None:
    stage_signals.arm()
    raise_if_interrupted()  # armed, no signal
    stage_signals.settle()
    raise_if_interrupted()  # settled: no stage of this process is installed

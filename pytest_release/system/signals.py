"""SIGINT/SIGTERM of a stage: held back while a rollback step runs (a rollback must not
stop half-way), and turned into one interrupt of the session that never kills it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
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


def raise_if_interrupted() -> None:
    """Raise the stage's interrupt again if the first one did not stop it.

    A signal handler runs wherever the main thread happens to be, and Python drops an
    exception raised inside a finalizer (a weakref callback, ``__del__``): the Kubernetes
    client's connection pools are closed by such finalizers, so the ``KeyboardInterrupt``
    of a SIGINT could vanish there ("Exception ignored in: <finalize object>") and the
    hold went on with the canary live.  Called where a stage waits (the hold) and before
    each item; a no-op in any process without an interrupted stage."""
    for stage in list(_INSTALLED):
        stage.raise_pending()


class StageSignals:
    """SIGINT/SIGTERM of a stage session, from the moment it is registered to the end of
    the process.

    * Before :meth:`arm` (the checks, the lock, xdist starting its workers, the ledger
      entry being written) a signal is held: pytest would skip the end of the session for
      an interrupt raised there, and leave a ``running`` entry or a lock behind.
      :meth:`arm` raises it as soon as that is safe.
    * Armed, the first signal interrupts the session (``KeyboardInterrupt``, like Ctrl-C)
      so its end runs and records ``interrupted``; later ones are ignored with a message:
      CI runners send SIGTERM then more, people press Ctrl-C twice.
    * Once the record is written (:meth:`recorded`) and after the session (:meth:`settle`)
      a signal is ignored too: dying by it would turn the stage's exit status into -15 or
      -2, and the record cannot change any more.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._armed = False
        self._recorded = False
        self._interrupted = False  # a KeyboardInterrupt was raised for the first signal
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                return
        _INSTALLED.append(self)

    def raise_pending(self) -> None:
        """The interrupt again, while the stage was interrupted and is not recorded yet
        (see :func:`raise_if_interrupted`)."""
        if self._interrupted and not self._recorded:
            raise KeyboardInterrupt(f"received signal {self.received[0]}")

    def arm(self) -> None:
        """From now on the first signal interrupts; one already held interrupts now."""
        self._armed = True
        if self.received and not self._recorded:
            self._interrupted = True
            raise KeyboardInterrupt(f"received signal {self.received[0]}")

    def recorded(self) -> None:
        """The stage's record is final: no signal interrupts any more."""
        self._recorded = True

    def settle(self) -> None:
        """At the end of the session: the previous handlers come back, unless a signal
        stopped this stage (the process is ending; the last signals must not kill it
        before it exits with the stage's status)."""
        if self in _INSTALLED:
            _INSTALLED.remove(self)
        if self.received:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self._armed and not self._recorded and len(self.received) == 1:
            self._interrupted = True
            raise KeyboardInterrupt(f"received signal {signum}")
        if not self._armed and not self._recorded and len(self.received) == 1:
            what = "held: the stage stops as soon as it can do so with a true record"
        elif self._recorded:
            what = "ignored: the stage is recorded and ends now"
        else:
            what = "ignored: the stage is being stopped and recorded (rollback, ledger)"
        with suppress(OSError):
            os.write(
                2,
                f"\npytest-release: signal {signum} {what}; SIGKILL ends it without a "
                "record\n".encode(),
            )


# The installed StageSignals of this process (pytester runs several sessions in one).
_INSTALLED: list[StageSignals] = []

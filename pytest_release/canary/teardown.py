"""End everything the local platforms and their routers run for a project.

The local platform's replicas, their supervisor and HAProxy outlive the pytest sessions
of the stages (on purpose: canary-2 picks up what canary-1 deployed).  When a local
pipeline is done with, this ends them (by PID / container id, from the state files) and
removes the state; what ends a platform's processes is its registration's ``teardown``
(``platforms/local/teardown.py`` for the local platform and its HAProxy)::

    python -m pytest_release.canary.teardown [ROOTDIR] [--state-dir DIR ...]
        [--ledger .pytest-release/ledger.json] [--force]

Without ``--state-dir`` it ends every platform kept under ``ROOTDIR/.pytest-release/``
(production's ``canary`` and each environment's, e.g. ``staging``), then the daemons the
demo pipeline's set-up started and recorded (registry, dockerd and its containerd:
:mod:`pytest_release.canary.started_processes`); one that was running before the
pipeline is not recorded and keeps running.

While a rollout stage runs it holds the ledger's rollout lock (``<ledger>.rollout.lock``);
the teardown takes that lock too, so it refuses to pull the platform from under a live
rollout unless ``--force`` is given.  Once every platform is gone (no ``--state-dir``),
an abandoned rollout (a stage that died, its lease expired) is recorded ``interrupted``
and its lease removed: its canary no longer exists.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from pytest_release.canary.registry import registry
from pytest_release.canary.started_processes import stop_started
from pytest_release.errors import LedgerError
from pytest_release.ledger.ledger import FileLedgerStore

DEFAULT_LEDGER = ".pytest-release/ledger.json"


class RolloutRunning(ValueError):
    """A rollout stage holds the ledger's rollout lock."""


def teardown(
    rootdir: Path,
    state_dir: str = ".pytest-release/canary",
    *,
    ledger: str = DEFAULT_LEDGER,
    force: bool = False,
) -> list[str]:
    """End the platform and router kept under ``rootdir/state_dir``; returns what was done.
    Holds the rollout lock of the file ledger ``ledger`` meanwhile (unless ``force``);
    :class:`RolloutRunning` when a rollout stage holds it."""
    ledger_path = Path(ledger) if Path(ledger).is_absolute() else rootdir / ledger
    with ExitStack() as held:
        if not force and ledger_path.parent.is_dir():
            owner = f"teardown, pid {os.getpid()}"
            try:
                held.enter_context(FileLedgerStore(ledger_path).rollout_lock(owner))
            except LedgerError as exc:
                raise RolloutRunning(
                    f"a rollout stage is running: {exc}. Tearing down now would end the "
                    "replicas and the router under it; wait for the stage to end, or pass "
                    "--force to tear down anyway"
                ) from None
        return _teardown(rootdir, state_dir)


def _teardown(rootdir: Path, state_dir: str) -> list[str]:
    path = Path(state_dir)
    directory = path if path.is_absolute() else rootdir / path
    done: list[str] = []
    # Each registered platform that keeps processes under a state directory ends its own
    # (local-process and local-docker share one).
    for end in dict.fromkeys(p.teardown for p in registry().platforms.values() if p.teardown):
        module, _, function = end.partition(":")
        done += getattr(importlib.import_module(module), function)(rootdir, directory)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("rootdir", nargs="?", default=".", help="project directory (default: .)")
    parser.add_argument(
        "--state-dir",
        action="append",
        help="platform.state_dir of a canary gate, repeatable (default: every directory "
        "under ROOTDIR/.pytest-release with a platform or router state)",
    )
    parser.add_argument(
        "--ledger",
        default=DEFAULT_LEDGER,
        help="the file ledger of the stages, relative to ROOTDIR; its rollout lock is "
        f"respected (default: {DEFAULT_LEDGER})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="tear down even while a rollout stage holds the ledger's rollout lock",
    )
    args = parser.parse_args(argv)
    rootdir = Path(args.rootdir).resolve()
    state_dirs = args.state_dir or kept_state_dirs(rootdir)
    done = []
    for state_dir in state_dirs:
        try:
            done += teardown(rootdir, state_dir, ledger=args.ledger, force=args.force)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if not args.state_dir:
        # Every platform is gone, and with it any canary an abandoned stage left behind.
        done += settle_abandoned(rootdir, args.ledger)
        # Last: the Docker daemon the platforms' containers needed until now.
        done += stop_started(rootdir)
    print("\n".join(done) if done else f"nothing runs under {', '.join(state_dirs) or rootdir}")
    return 0


def settle_abandoned(rootdir: Path, ledger: str = DEFAULT_LEDGER) -> list[str]:
    """After every platform was torn down: the abandoned rollouts of the file ledger are
    recorded ``interrupted`` (not rolled back: nothing runs any more) and their leases
    removed, so the next stage is not refused for a canary that no longer exists."""

    from pytest_release.ledger.ledger import Ledger, abandoned_rollouts

    ledger_path = Path(ledger) if Path(ledger).is_absolute() else rootdir / ledger
    if not ledger_path.exists():
        return []
    store = FileLedgerStore(ledger_path)
    done = []
    for abandoned in abandoned_rollouts(store, Ledger(store).entries()):
        lease, entry = abandoned.lease, abandoned.entry
        if entry is not None:
            message = (
                f"abandoned: the stage process died without ending ({lease.describe()}); "
                "not rolled back: every local platform and router was torn down "
                "(python -m pytest_release.canary.teardown), nothing runs any more"
            )
            Ledger(store).update(abandoned.ended(entry, "interrupted", message, by="teardown"))
        store.settle(lease)
        done.append(f"ledger: recorded the abandoned rollout of {lease.owner} as interrupted")
    return done


def kept_state_dirs(rootdir: Path) -> list[str]:
    """The state directories under ``rootdir/.pytest-release`` with a platform or router."""
    names = {name for p in registry().platforms.values() for name in p.state_files}
    found = []
    for directory in sorted((rootdir / ".pytest-release").glob("*/")):
        if any((directory / name).exists() for name in names):
            found.append(str(directory.relative_to(rootdir)))
    return found


if __name__ == "__main__":
    sys.exit(main())

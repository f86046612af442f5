"""Small building blocks for state that outlives a pytest session.

* running a tool once with a deadline in its own process group (:func:`run_tool`), and
  ending that group (:func:`kill_group`), or every running one (:class:`ProcessGroups`);
* process identity that survives PID reuse: a PID plus its start time from
  ``/proc/<pid>/stat``; zombies count as dead;
* ending a process by PID: SIGTERM, wait, SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_release.system.atomic import read_json, write_json_atomic

__all__ = [
    "ProcessGroups",
    "ProcessRef",
    "ToolRun",
    "free_port",
    "keepable_port",
    "kill_group",
    "pid_alive",
    "port_open",
    "read_json",
    "run_tool",
    "terminate",
    "wait_bindable",
    "write_json_atomic",
]


def kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group a tool was started in (``start_new_session=True``), so
    its children go too; the process alone when the group is gone or not ours."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


@dataclass(frozen=True)
class ToolRun:
    """What :func:`run_tool` saw: the exit code (None when killed at the deadline), the
    output, the time it took."""

    returncode: int | None
    stdout: str
    stderr: str
    duration: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class ProcessGroups:
    """The tool processes running now, so an interrupt can end them (by process group:
    a wrapper script's children too).  For tools run from threads: the interrupt reaches
    the main thread, which calls :meth:`kill_all`; a tool started after that is ended at
    once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[Any]] = set()
        self._closed = False

    def add(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.add(proc)
            closed = self._closed
        if closed:  # started after an interrupt: end it at once
            kill_group(proc)

    def discard(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            self._closed = True
            procs = list(self._procs)
        for proc in procs:
            kill_group(proc)


def run_tool(
    argv: Sequence[str],
    cwd: Path,
    deadline: float,
    *,
    env: Mapping[str, str] | None = None,
    running: ProcessGroups | None = None,
) -> ToolRun:
    """Run ``argv`` in a process group of its own, killed (with its children) after
    ``deadline`` seconds, and also when this process is interrupted while it waits
    (Ctrl-C, SIGTERM turned into KeyboardInterrupt), so no tool outlives its stage.
    ``running`` lists it while it runs (tools run from threads, ended by the main
    thread).  Raises OSError when the tool cannot be started."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    if running is not None:
        running.add(process)
    try:
        try:
            stdout, stderr = process.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            kill_group(process)
            stdout, stderr = process.communicate()
            return ToolRun(None, stdout or "", stderr or "", time.monotonic() - started)
    finally:
        if process.poll() is None:
            kill_group(process)
            process.wait()
        if running is not None:
            running.discard(process)
    return ToolRun(process.returncode, stdout or "", stderr or "", time.monotonic() - started)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    closing = raw.rfind(")")
    return [
        raw[: raw.find("(")].strip(),
        raw[raw.find("(") + 1 : closing],
        *raw[closing + 2 :].split(),
    ]


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22), None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 22:
        return None
    return int(fields[21])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if given, started at ``start_time``."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 22:
        return False
    if fields[2] in ("Z", "X"):
        return False
    return start_time is None or int(fields[21]) == start_time


@dataclass(frozen=True)
class ProcessRef:
    """A process identified by PID and start time (safe against PID reuse)."""

    pid: int
    start_time: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid, process_start_time(pid))

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRef:
        start = data.get("start_time")
        return cls(int(data["pid"]), None if start is None else int(start))


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(ref: ProcessRef, timeout: float = 5.0) -> bool:
    """End the process ``ref`` (SIGTERM, then SIGKILL after ``timeout``).

    Returns False when it was not running (already gone, or the PID now belongs to
    another process, which is left alone)."""
    if not ref.alive():
        _reap(ref.pid)
        return False
    try:
        os.kill(ref.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(ref.pid)
        if not ref.alive():
            _reap(ref.pid)
            return True
        time.sleep(0.02)
    if ref.alive():
        try:
            os.kill(ref.pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + 5.0
        while ref.alive() and time.monotonic() < deadline:
            _reap(ref.pid)
            time.sleep(0.02)
    _reap(ref.pid)
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Below Linux's default ephemeral range (32768-60999): the kernel never hands these out
# for other programs' outgoing connections or bind(port 0).
_KEPT_PORTS = range(20000, 32000)


def keepable_port(host: str = "127.0.0.1") -> int:
    """A free port for a listener that must get the same port back after a restart
    (the router): chosen outside the ephemeral range, so that while it is briefly
    closed no other program's ``bind(0)`` or outgoing connection can take it."""
    for port in random.sample(_KEPT_PORTS, 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    return free_port(host)


def wait_bindable(host: str, port: int, timeout: float) -> bool:
    """Whether a listener could bind ``port`` now, waiting up to ``timeout`` for a
    predecessor that was just killed to release it.  A bind test, not a connect test:
    connecting to a closed port can succeed by TCP self-connect."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HAProxy does
            try:
                sock.bind((host, port))
                return True
            except OSError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

"""A small process supervisor for the local-process platform.

Run as ``python3 supervisor.py DIR`` (standard library only, no package imports, so it
runs from its file path).  It outlives the pytest session that started it: a later
stage re-attaches through the files in ``DIR``:

* ``desired.json`` (written by the platform, atomically):
  ``{"generation": N, "shutdown": false, "replicas": {NAME: {"argv": [...],
  "env": {...}, "cwd": "..."}}}``
* ``status.json`` (written here, atomically): the applied generation, the supervisor's
  own PID, and per replica its PID, start time, whether it runs, how often it was
  restarted, its last exit code and start error.
* ``logs/NAME.log``: each replica's stdout and stderr.

Dead man's switch: ``lease-watch.json`` (written by each rollout stage) names the
stage's lease (:mod:`pytest_release.ledger.lease`) and the HAProxy router's state.  When that
lease expires (the stage died without ending), the supervisor sets the weight of every
canary server to 0 through HAProxy's runtime API (stable servers raised first, so the
backend never has weight 0 everywhere), checks the weights back, and records what it did
in ``switched.json``; it polls every :data:`LEASE_POLL` seconds, so an unjudged canary
keeps traffic at most the lease's time to live plus that after its stage died.

Children that exit while still desired are restarted (exponential back-off from 0.2 s,
at most 2 s, reset after 10 s of uptime) and their restart count goes up.  Replicas
removed from ``desired.json`` get SIGTERM, then SIGKILL after ``stop_timeout``.  On
SIGTERM/SIGINT or ``"shutdown": true`` every child is stopped and the supervisor exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

POLL = 0.05
BACKOFF_START = 0.2
BACKOFF_MAX = 2.0
STABLE_UPTIME = 10.0
LEASE_POLL = 0.5
WATCH_FILE = "lease-watch.json"
SWITCHED_FILE = "switched.json"
HAPROXY_BACKEND = "app"
HAPROXY_MAX_WEIGHT = 256


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _start_time(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


@dataclass
class Child:
    name: str
    spec: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    start_time: int | None = None
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    error: str = ""
    crashes_in_a_row: int = 0
    next_start: float = 0.0
    ever_started: bool = False
    log_path: Path = field(default_factory=Path)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self, directory: Path, stop_timeout: float = 5.0) -> None:
        self.dir = directory
        self.desired_path = directory / "desired.json"
        self.status_path = directory / "status.json"
        self.logs = directory / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stop_timeout = stop_timeout
        self.children: dict[str, Child] = {}
        self.generation = -1
        self.desired_version: tuple[int, int] | None = None
        self.stopping = False
        self.last_status: str = ""
        self.last_write = 0.0
        self.switched: tuple[str, float] | None = None
        self.next_lease_check = 0.0

    # -- desired state -------------------------------------------------------------------
    def _read_desired(self) -> dict[str, Any] | None:
        try:
            stat = self.desired_path.stat()
        except FileNotFoundError:
            return None
        version = (stat.st_ino, stat.st_mtime_ns)
        if version == self.desired_version:
            return None
        try:
            data = json.loads(self.desired_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # written atomically, so this is transient; retry next poll
        self.desired_version = version
        return data if isinstance(data, dict) else None

    def apply(self, desired: dict[str, Any]) -> None:
        if desired.get("shutdown"):
            self.stopping = True
            return
        wanted: dict[str, Any] = desired.get("replicas", {})
        gone = [name for name in self.children if name not in wanted]
        self._stop_children([self.children[name] for name in gone])
        for name in gone:
            del self.children[name]
        for name, spec in wanted.items():
            child = self.children.get(name)
            if child is None:
                self.children[name] = Child(name, spec, log_path=self.logs / f"{name}.log")
            elif child.spec != spec:
                # A changed spec means a new deployment of that replica name.
                self._stop_children([child])
                self.children[name] = Child(name, spec, log_path=self.logs / f"{name}.log")
        self.generation = int(desired.get("generation", 0))

    # -- children ------------------------------------------------------------------------
    def _spawn(self, child: Child, now: float) -> None:
        spec = child.spec
        env = {str(k): str(v) for k, v in spec.get("env", {}).items()}
        try:
            with child.log_path.open("ab") as log:
                proc = subprocess.Popen(
                    [str(a) for a in spec["argv"]],
                    env=env,
                    cwd=spec.get("cwd") or None,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                )
        except OSError as exc:
            child.error = f"cannot start {spec['argv'][0]!r}: {exc}"
            child.proc = None
            child.next_start = now + BACKOFF_MAX
            return
        if child.ever_started:
            child.restarts += 1
        child.ever_started = True
        child.error = ""
        child.proc = proc
        child.start_time = _start_time(proc.pid)
        child.started_at = time.time()

    def _check(self, child: Child, now: float) -> None:
        if child.proc is not None:
            code = child.proc.poll()
            if code is None:
                if time.time() - child.started_at > STABLE_UPTIME:
                    child.crashes_in_a_row = 0
                return
            child.last_exit = code
            child.proc = None
            uptime = time.time() - child.started_at
            child.crashes_in_a_row = 0 if uptime > STABLE_UPTIME else child.crashes_in_a_row + 1
            delay = min(BACKOFF_START * 2 ** max(0, child.crashes_in_a_row - 1), BACKOFF_MAX)
            child.next_start = now + delay
            with child.log_path.open("a", encoding="utf-8") as log:
                log.write(f"[supervisor] {child.name} exited with {code}; restart in {delay}s\n")
        if now >= child.next_start:
            self._spawn(child, now)

    def _stop_children(self, children: list[Child]) -> None:
        running = [c for c in children if c.running()]
        for child in running:
            assert child.proc is not None
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            child.proc = None

    # -- dead man's switch ------------------------------------------------------------------
    def watch_lease(self) -> None:
        """100 % stable through HAProxy once the watched stage lease expired (once per
        lease renewal seen); a failure is logged and retried at the next poll."""
        try:
            watch = json.loads((self.dir / WATCH_FILE).read_text(encoding="utf-8"))
            lease = json.loads(Path(watch["lease"]).read_text(encoding="utf-8"))
            expires = float(lease["renewed"]) + float(lease["ttl"])
        except (OSError, ValueError, KeyError, TypeError):
            return  # no rollout stage watched, or it ended (its lease removed)
        if time.time() <= expires or self.switched == (watch["lease"], expires):
            return
        try:
            done = _canary_to_zero(Path(watch["router_state"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.stdout.write(f"[supervisor] dead man's switch failed, retrying: {exc}\n")
            sys.stdout.flush()
            return
        self.switched = (watch["lease"], expires)
        record = {
            "at": time.time(),
            "lease": watch["lease"],
            "owner": lease.get("owner"),
            "pid": lease.get("pid"),
            "host": lease.get("host"),
            "last_heartbeat": lease.get("renewed"),
            "expired": expires,
            "commands": done,
        }
        _write_json_atomic(self.dir / SWITCHED_FILE, record)
        sys.stdout.write(f"[supervisor] lease expired, 100% stable: {json.dumps(record)}\n")
        sys.stdout.flush()

    # -- status --------------------------------------------------------------------------
    def _status(self) -> dict[str, Any]:
        replicas = {}
        for name, child in self.children.items():
            running = child.running()
            replicas[name] = {
                "pid": child.proc.pid if running and child.proc else None,
                "start_time": child.start_time if running else None,
                "running": running,
                "restarts": child.restarts,
                "last_exit": child.last_exit,
                "error": child.error,
                "started_at": child.started_at if running else None,
                "log": str(child.log_path),
            }
        return {
            "generation": self.generation,
            "supervisor": {"pid": os.getpid(), "start_time": _start_time(os.getpid())},
            "stopped": False,
            "replicas": replicas,
        }

    def write_status(self, force: bool = False) -> None:
        status = self._status()
        text = json.dumps(status, sort_keys=True)
        now = time.monotonic()
        if force or text != self.last_status or now - self.last_write > 1.0:
            status["updated"] = time.time()
            _write_json_atomic(self.status_path, status)
            self.last_status = text
            self.last_write = now

    def run(self) -> int:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while not self.stopping:
            desired = self._read_desired()
            if desired is not None:
                self.apply(desired)
            now = time.monotonic()
            for child in list(self.children.values()):
                if self.stopping:
                    break
                self._check(child, now)
            self.write_status()
            if time.monotonic() >= self.next_lease_check:
                self.next_lease_check = time.monotonic() + LEASE_POLL
                self.watch_lease()
            time.sleep(POLL)
        self._stop_children(list(self.children.values()))
        self.children.clear()
        status = self._status()
        status["stopped"] = True
        status["updated"] = time.time()
        _write_json_atomic(self.status_path, status)
        return 0


def _haproxy(socket_path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(socket_path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _canary_to_zero(router_state: Path) -> list[str]:
    """Every canary server of the router at weight 0, stable servers at an equal weight
    above 0 (raised first); raises ValueError when HAProxy reads back otherwise."""
    state = json.loads(router_state.read_text(encoding="utf-8"))
    slots = [(i, s["group"]) for i, s in enumerate(state.get("slots", [])) if s]
    stable = [i for i, group in slots if group == "stable"]
    canary = [i for i, group in slots if group == "canary"]
    if not stable:
        raise ValueError(f"no stable server in {router_state}: nothing to send the traffic to")
    commands = [f"set server {HAPROXY_BACKEND}/slot{i} weight {HAPROXY_MAX_WEIGHT}" for i in stable]
    commands += [f"set server {HAPROXY_BACKEND}/slot{i} weight 0" for i in canary]
    for command in commands:
        answer = _haproxy(str(state["socket"]), command).strip()
        if answer:
            raise ValueError(f"HAProxy answered {answer!r} to {command!r}")
    text = _haproxy(str(state["socket"]), f"show servers state {HAPROXY_BACKEND}")
    weights: dict[int, int] = {}
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("# be_id"):
            header = line[2:].split()
            continue
        row = dict(zip(header, line.split(), strict=False))
        name = row.get("srv_name", "")
        if row.get("be_name") == HAPROXY_BACKEND and name[4:].isdigit():
            weights[int(name[4:])] = int(row["srv_uweight"])
    wrong = [i for i in canary if weights.get(i) != 0]
    if wrong or not any(weights.get(i) for i in stable):
        raise ValueError(f"HAProxy reads back weights {weights} after {commands}")
    return commands


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: supervisor.py DIR\n")
        return 2
    directory = Path(args[0])
    directory.mkdir(parents=True, exist_ok=True)
    return Supervisor(directory).run()


if __name__ == "__main__":
    sys.exit(main())

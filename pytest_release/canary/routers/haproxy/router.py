"""The local traffic router: an HAProxy of its own, steered through its runtime API.

The router starts ``haproxy`` (from PATH) with one frontend on 127.0.0.1 and one
round-robin backend of pre-declared server slots (``slot0``..``slotN``).  Replicas are
put into free slots live (``set server app/slotK addr 127.0.0.1 port P``, ``state
ready``), weights are changed live (``set server app/slotK weight W``) over the admin
stats socket, and read back with ``show servers state app`` after every change: no
reload, no config rewrite, no dropped request.  Leaving endpoints get weight 0 and are
drained (their in-flight requests finish) before they go into maintenance.

HAProxy outlives the pytest session: its PID, port, socket and slot table are kept in
``<state_dir>/haproxy/router.json`` and the next stage re-attaches.

Over 500 lines on purpose: one class holds the whole conversation with HAProxy's runtime API
(slots, weights, drain, read-back) and its state file; split, each half would need the other's
invariants.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from filelock import FileLock

from pytest_release.canary.router import MemberChange, VersionCount, Weights, check_weights
from pytest_release.canary.routers.haproxy.config import HAProxyConfig
from pytest_release.canary.routers.haproxy.entry import CAPABILITIES
from pytest_release.canary.routers.haproxy.state import (
    RouterState,
    ServerState,
    percent,
    server_weights,
)
from pytest_release.errors import RouterError

if TYPE_CHECKING:
    from pytest_release.canary.platform import Group, PlatformStatus
from pytest_release.system.processes import (
    ProcessRef,
    keepable_port,
    port_open,
    read_json,
    terminate,
    wait_bindable,
    write_json_atomic,
)

BACKEND = "app"
HOST = "127.0.0.1"


class HAProxyRouter:
    """:class:`~pytest_release.canary.router.TrafficRouter` backed by a local HAProxy."""

    capabilities = CAPABILITIES
    describe = "the HAProxy router"

    def __init__(self, config: HAProxyConfig, state_dir: Path) -> None:
        self.config = config
        self.dir = state_dir / "haproxy"
        self.state_path = self.dir / "router.json"
        self.config_path = self.dir / "haproxy.cfg"
        self.log_path = self.dir / "haproxy.log"
        self._lock = FileLock(str(self.dir / "router.lock"))
        self._state: RouterState | None = None

    # -- lifecycle -----------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[RouterState]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            state = self._load()
            yield state
            write_json_atomic(self.state_path, state.to_json())
            self._state = state

    def _load(self) -> RouterState:
        data = read_json(self.state_path, RouterError)
        if data is None:
            port = self.config.port or keepable_port(HOST)
            state = RouterState(port=port, socket=self._socket_path())
        else:
            state = RouterState.from_json(data)
        state.slots += [None] * max(0, self.config.slots - len(state.slots))
        return state

    def _socket_path(self) -> str:
        path = self.dir / "admin.sock"
        if len(str(path)) < 100:
            return str(path)
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
        return str(Path(tempfile.gettempdir()) / f"pytest-release-haproxy-{digest}.sock")

    @property
    def url(self) -> str:
        state = self._state or self._load()
        return f"http://{HOST}:{state.port}"

    def members_for(self, status: PlatformStatus, group: Group) -> tuple[str, ...]:
        return status.endpoints(group)  # the replicas' endpoints are the servers

    def backend_problems(self, status: PlatformStatus) -> list[str]:
        return []

    def counters(self) -> dict[Group, VersionCount] | None:
        """``show stat`` per server, added up by the group its endpoint serves now."""
        from pytest_release.canary.evidence.router_stats import parse_show_stat

        weights = self.weights()
        groups: dict[str, Group] = dict.fromkeys(weights.stable_members, "stable")
        groups.update(dict.fromkeys(weights.canary_members, "canary"))
        counts = {"stable": [0, 0], "canary": [0, 0]}
        for server in parse_show_stat(self._command(self._load(), "show stat"), BACKEND):
            group = groups.get(server.endpoint)
            if group is not None:
                counts[group][0] += server.requests
                counts[group][1] += server.errors
        return {g: VersionCount(*counts[g]) for g in ("stable", "canary")}

    @property
    def running(self) -> bool:
        state = self._state or self._load()
        return state.haproxy is not None and state.haproxy.alive()

    def _render_config(self, state: RouterState) -> str:
        c = self.config
        lines = [
            "global",
            f"    stats socket {state.socket} mode 600 level admin",
            "    maxconn 4096",
            "defaults",
            "    mode http",
            f"    timeout connect {int(c.timeout_connect * 1000)}ms",
            "    timeout client 60s",
            f"    timeout server {int(c.timeout_server * 1000)}ms",
            "    timeout http-keep-alive 10s",
            "    retries 3",
            "    option redispatch 1",
            "    retry-on conn-failure empty-response",
            "frontend release",
            f"    bind {HOST}:{state.port}",
            f"    default_backend {BACKEND}",
            *c.exporter_lines(HOST),
            f"backend {BACKEND}",
            "    balance roundrobin",
            "    http-response set-header X-Release-Server %s",
        ]
        ws, wc = self._weights_for(state, state.split)
        for index, slot in enumerate(state.slots):
            if slot is None:
                lines.append(f"    server slot{index} {HOST}:1 weight 0 disabled")
            else:
                weight = ws if slot["group"] == "stable" else wc
                lines.append(f"    server slot{index} {slot['endpoint']} weight {weight}")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start HAProxy unless it runs already (re-attach)."""
        with self._locked() as state:
            if state.haproxy is not None and state.haproxy.alive():
                return
            binary = shutil.which(self.config.binary)
            if binary is None:
                raise RouterError(
                    f"the router needs HAProxy but {self.config.binary!r} is not on PATH; install "
                    "it (Debian: apt-get install -y haproxy) or set router.binary"
                )
            if not wait_bindable(HOST, state.port, timeout=5.0):
                raise RouterError(
                    f"cannot start HAProxy: 127.0.0.1:{state.port} is already in use by another "
                    "program; set router.port to a free port"
                )
            Path(state.socket).unlink(missing_ok=True)
            self.config_path.write_text(self._render_config(state), encoding="utf-8")
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                pid = os.posix_spawn(
                    binary,
                    [binary, "-f", str(self.config_path), "-db"],
                    {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")},
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_DUP2, fd, 1),
                        (os.POSIX_SPAWN_DUP2, fd, 2),
                    ],
                    setsid=True,
                )
            finally:
                os.close(fd)
            ref = ProcessRef.of(pid)
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                if not ref.alive():
                    break
                if Path(state.socket).exists() and port_open(HOST, state.port):
                    try:
                        self._command(state, "show info")
                    except RouterError:
                        pass
                    else:
                        state.haproxy = ref
                        return
                time.sleep(0.02)
            terminate(ref)
            log = self.log_path.read_text(encoding="utf-8", errors="replace")
            raise RouterError(
                f"HAProxy did not start (config {self.config_path}); its output:\n{log[-2000:]}"
            )

    def server_endpoints(self) -> dict[str, str]:
        """HAProxy server name -> endpoint of the slots in use (``X-Release-Server``)."""
        state = self._state or self._load()
        return {f"slot{i}": s["endpoint"] for i, s in enumerate(state.slots) if s is not None}

    def wait_serving(self, group: Group, replicas: int) -> None:
        """At once: the members are the replicas, ready when the platform says so."""

    def drain(self) -> None:
        """At once: :meth:`set_members` drains the servers that leave before it returns."""

    def stop(self) -> None:
        """End HAProxy (by PID) and forget the router state."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            try:
                data = read_json(self.state_path)
            except ValueError:
                data = None
            if data is not None:
                state = RouterState.from_json(data)
                if state.haproxy is not None:
                    terminate(state.haproxy)
                Path(state.socket).unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)
            self._state = None

    # -- runtime API ---------------------------------------------------------------------
    def _command(self, state: RouterState, command: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5.0)
                sock.connect(state.socket)
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except OSError as exc:
            raise RouterError(
                f"HAProxy runtime API at {state.socket} failed for {command!r}: {exc}; is HAProxy "
                f"running (see {self.log_path})?"
            ) from None
        return b"".join(chunks).decode("utf-8", errors="replace")

    def _set(self, state: RouterState, command: str) -> None:
        reply = self._command(state, command).strip()
        # Successful "set server" commands answer nothing, or a note about the change.
        if reply and "changed from" not in reply and not reply.startswith("IP changed"):
            raise RouterError(f"HAProxy refused {command!r}: {reply}")

    def servers(self, state: RouterState | None = None) -> list[ServerState]:
        """``show servers state`` of the backend, parsed."""
        state = state or self._state or self._load()
        text = self._command(state, f"show servers state {BACKEND}")
        header: list[str] = []
        servers = []
        for line in text.splitlines():
            if line.startswith("# be_id"):
                header = line[2:].split()
                continue
            if not line.strip() or line.startswith("#") or not header or line.strip() == "1":
                continue
            row = dict(zip(header, line.split(), strict=False))
            if row.get("be_name") != BACKEND:
                continue
            servers.append(
                ServerState(
                    name=row["srv_name"],
                    addr=row["srv_addr"],
                    port=int(row.get("srv_port", "0") or 0),
                    weight=int(row["srv_uweight"]),
                    admin_state=int(row["srv_admin_state"]),
                    op_state=int(row["srv_op_state"]),
                )
            )
        if not servers:
            raise RouterError(f"HAProxy answered no server for backend {BACKEND!r}: {text[:500]}")
        return servers

    def _sessions(self, state: RouterState) -> dict[str, int]:
        text = self._command(state, "show stat")
        header: list[str] = []
        current: dict[str, int] = {}
        for line in text.splitlines():
            if line.startswith("# "):
                header = line[2:].split(",")
                continue
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == BACKEND and row.get("svname", "").startswith("slot"):
                current[row["svname"]] = int(row.get("scur") or 0) + int(row.get("qcur") or 0)
        return current

    # -- weights ---------------------------------------------------------------------------
    def _weights_for(self, state: RouterState, split: tuple[int, int]) -> tuple[int, int]:
        return server_weights(
            split[0], split[1], len(state.members("stable")), len(state.members("canary"))
        )

    def _read_back(self, state: RouterState) -> Weights:
        servers = {s.name: s for s in self.servers(state)}
        totals = {"stable": 0, "canary": 0}
        for index, slot in enumerate(state.slots):
            server = servers.get(f"slot{index}")
            if slot is None or server is None:
                continue
            if server.endpoint != slot["endpoint"]:
                raise RouterError(
                    f"HAProxy server slot{index} points at {server.endpoint} but the router state "
                    f"({self.state_path}) says {slot['endpoint']}; stop the router and start again"
                )
            if server.in_service:
                totals[slot["group"]] += server.weight
        for server in servers.values():
            index = int(server.name.removeprefix("slot")) if server.name[4:].isdigit() else -1
            slot = state.slots[index] if 0 <= index < len(state.slots) else None
            if slot is None and server.in_service and server.weight:
                raise RouterError(
                    f"HAProxy server {server.name} ({server.endpoint}) takes traffic but is not "
                    f"in the router state {self.state_path}"
                )
        total = totals["stable"] + totals["canary"]
        return Weights(
            stable=percent(totals["stable"], total),
            canary=percent(totals["canary"], total),
            stable_members=tuple(state.members("stable")),
            canary_members=tuple(state.members("canary")),
        )

    def _apply_split(self, state: RouterState, split: tuple[int, int]) -> Weights:
        stable, canary = split
        for group, share in (("stable", stable), ("canary", canary)):
            if share and not state.members(group):
                raise RouterError(
                    f"cannot send {share}% of the traffic to the {group} group: it has no "
                    "endpoint; deploy its replicas first"
                )
        ws, wc = self._weights_for(state, split)
        # Raise the weights that grow before lowering the others, so the backend never
        # has all servers at weight 0 (that would answer 503).
        changes = []
        for index, slot in enumerate(state.slots):
            if slot is not None:
                changes.append((index, ws if slot["group"] == "stable" else wc))
        for index, weight in sorted(changes, key=lambda c: -c[1]):
            self._set(state, f"set server {BACKEND}/slot{index} weight {weight}")
        state.split = split
        weights = self._read_back(state)
        if (weights.stable, weights.canary) != split:
            raise RouterError(
                f"HAProxy applies stable {weights.stable}% / canary {weights.canary}% after "
                f"setting stable {stable}% / canary {canary}% (per-server weights {ws}/{wc} for "
                f"{len(state.members('stable'))} stable and {len(state.members('canary'))} "
                "canary servers); the split cannot be expressed with HAProxy weights 0..256, "
                "choose a rounder weight"
            )
        return weights

    def set_weights(self, *, stable: int, canary: int) -> Weights:
        check_weights(stable, canary)
        self.start()
        with self._locked() as state:
            return self._apply_split(state, (stable, canary))

    def weights(self) -> Weights:
        self.start()
        with self._locked() as state:
            return self._read_back(state)

    def set_members(self, **change: Unpack[MemberChange]) -> Weights:
        """Put endpoints into (or out of) the groups; ``split`` changes the weights in the
        same step (e.g. when the canary group becomes the stable one on promotion)."""
        stable, canary, split = change["stable"], change["canary"], change.get("split")
        overlap = set(stable) & set(canary)
        if overlap:
            raise RouterError(f"endpoints {sorted(overlap)} cannot be both stable and canary")
        if split is not None:
            check_weights(*split)
        self.start()
        with self._locked() as state:
            wanted = {**dict.fromkeys(stable, "stable"), **dict.fromkeys(canary, "canary")}
            leaving = [
                i
                for i, s in enumerate(state.slots)
                if s is not None and s["endpoint"] not in wanted
            ]
            present = {s["endpoint"]: i for i, s in enumerate(state.slots) if s is not None}
            free = [i for i, s in enumerate(state.slots) if s is None]
            adding = [e for e in wanted if e not in present]
            if len(adding) > len(free):
                raise RouterError(
                    f"the router has {self.config.slots} server slots; {len(present)} are in use "
                    f"and {len(adding)} more are needed; raise router.slots"
                )
            # 1. New endpoints join at weight 0.
            for endpoint in adding:
                index = free.pop(0)
                host, _, port = endpoint.rpartition(":")
                self._set(state, f"set server {BACKEND}/slot{index} addr {host} port {port}")
                self._set(state, f"set server {BACKEND}/slot{index} weight 0")
                self._set(state, f"set server {BACKEND}/slot{index} state ready")
                state.slots[index] = {"endpoint": endpoint, "group": wanted[endpoint]}
            for endpoint, index in present.items():
                if endpoint in wanted:
                    state.slots[index] = {"endpoint": endpoint, "group": wanted[endpoint]}
            # 2. Leaving endpoints stop getting new requests; the rest get their weights.
            gone = {i: state.slots[i] for i in leaving}
            for index in leaving:
                state.slots[index] = None
            new_split = split or state.split
            self._apply_split_with_leaving(state, new_split, gone)
            # 3. Drain, then maintenance.
            self._drain(state, list(gone))
            for index in leaving:
                self._set(state, f"set server {BACKEND}/slot{index} state maint")
            weights = self._read_back(state)
            if (weights.stable, weights.canary) != new_split:
                raise RouterError(
                    f"after changing members HAProxy applies {weights}, expected stable "
                    f"{new_split[0]}% / canary {new_split[1]}%"
                )
            return weights

    def _apply_split_with_leaving(
        self, state: RouterState, split: tuple[int, int], gone: Mapping[int, Any]
    ) -> None:
        stable, canary = split
        for group, share in (("stable", stable), ("canary", canary)):
            if share and not state.members(group):
                raise RouterError(
                    f"cannot keep {share}% of the traffic on the {group} group without "
                    f"endpoints; set the weights to 0 for {group} first"
                )
        ws, wc = self._weights_for(state, split)
        for index, slot in enumerate(state.slots):
            if slot is not None:
                weight = ws if slot["group"] == "stable" else wc
                self._set(state, f"set server {BACKEND}/slot{index} weight {weight}")
        for index in gone:
            self._set(state, f"set server {BACKEND}/slot{index} weight 0")
        state.split = split

    def _drain(self, state: RouterState, indices: Sequence[int]) -> None:
        if not indices:
            return
        deadline = time.monotonic() + self.config.drain_timeout
        while time.monotonic() < deadline:
            sessions = self._sessions(state)
            if all(sessions.get(f"slot{i}", 0) == 0 for i in indices):
                return
            time.sleep(0.02)

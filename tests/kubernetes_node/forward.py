"""TCP forwarder from the host's loopback into the cluster's network namespace.

``python3 forward.py NETNS_FILE PORTS_FILE TARGET [TARGET...]`` (TARGET = ``host:port`` as
seen inside the namespace): binds one listening socket per target on ``127.0.0.1:<free port>``
in the host's namespace, writes ``{"host:port": listen_port, ...}`` to PORTS_FILE, then moves
itself into the namespace (``setns``): the listening sockets stay in the host's namespace, the
connections it opens to the targets are made inside the cluster's.  So a process on the host
reaches the API server or Traefik through 127.0.0.1 only; no host socket ever addresses the
cluster's private addresses.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import sys
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000


def setns(netns_file: str) -> None:
    fd = os.open(netns_file, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({netns_file}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                s.shutdown(how)


def handle(client: socket.socket, host: str, port: int) -> None:
    try:
        upstream = socket.create_connection((host, port), timeout=30)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def serve(listener: socket.socket, host: str, port: int) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=handle, args=(client, host, port), daemon=True).start()


def main(argv: list[str]) -> int:
    netns_file, ports_file, *targets = argv
    listeners: dict[str, socket.socket] = {}
    for target in targets:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listeners[target] = listener
    setns(netns_file)  # from here on, new sockets belong to the cluster's namespace
    ports = {target: listener.getsockname()[1] for target, listener in listeners.items()}
    tmp = Path(ports_file + ".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.replace(ports_file)
    threads = []
    for target, listener in listeners.items():
        host, port = target.rsplit(":", 1)
        thread = threading.Thread(target=serve, args=(listener, host, int(port)), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

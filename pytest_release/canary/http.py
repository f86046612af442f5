"""The engine's one configuration of a blocking HTTP client (httpx): timeouts, retries
and connection limits in one place, for the probes a platform or a rollout sends itself
(a replica's health, requests through the router).

Probes count every failed request: a refused connection or a reset is the evidence they
exist to see, so ``retries`` (httpx retries a failed *connect* only, never a request that
reached the server) is 0 unless a caller asks for more.  ``trust_env`` is off: a proxy
from the environment must not carry loopback probes elsewhere.  The TLS context is built
once per process: building it reads the CA bundle (about 200 ms on a loaded machine),
which a probe sent every interval must not pay each time."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    import httpx


@dataclass(frozen=True)
class ClientSettings:
    """``timeout`` in seconds for connect, read, write and pool each; ``retries`` of a
    failed connect; ``connections`` kept alive (and open at most) per client."""

    timeout: float
    retries: int = 0
    connections: int = 1


def http_client(settings: ClientSettings) -> httpx.Client:
    """A client for ``settings`` (close it, or use it as a context manager)."""
    import httpx

    limits = httpx.Limits(
        max_connections=settings.connections, max_keepalive_connections=settings.connections
    )
    transport = httpx.HTTPTransport(
        verify=_tls_context(), retries=settings.retries, limits=limits, trust_env=False
    )
    return httpx.Client(transport=transport, timeout=settings.timeout, trust_env=False)


def http_origin(address: str) -> str:
    """``http://host:port`` of an address given as ``host:port`` or as a URL (its scheme,
    path and query are ignored: the probes speak plain HTTP to the address)."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"http://{address}")
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{parts.port or 80}"


def failure(method: str, path: str, exc: Exception) -> str:
    """How a probe names a request that got no answer."""
    return f"{method} {path} -> {type(exc).__name__}: {exc}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context(trust_env=False)

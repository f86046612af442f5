"""What Traefik applies, read from its own API (``router.api_url``).

Traefik applies a changed TraefikService asynchronously: its kubernetescrd provider
rebuilds the configuration from its watch caches, and the provider aggregator applies at
most one configuration per ``providersThrottleDuration`` (2 s by default).  It builds a
weighted TraefikService only when every Service it names — weight 0 included — exists and
has a serving endpoint; otherwise the whole TraefikService is left out and every route to
it answers 404.  So a Service may only be deleted (or lose its pods) once Traefik applies
a TraefikService that no longer names it: ``GET /api/http/services/<id>`` says when.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pytest_release.canary.http import ClientSettings, http_client
from pytest_release.errors import RouterError

POLL = 0.2


def service_id(namespace: str, name: str) -> str:
    """Traefik's name of a TraefikService (kubernetescrd provider)."""
    return f"{namespace}-{name}@kubernetescrd"


def backend_id(namespace: str, service: str, port: int) -> str:
    """Traefik's name of a Kubernetes Service backend (without the provider suffix)."""
    return f"{namespace}-{service}-{port}"


def applied_backends(api_url: str, service: str, timeout: float = 5.0) -> dict[str, int] | None:
    """Backend -> weight of the weighted service ``service`` as Traefik applies it now;
    None when Traefik has not built it (HTTP 404: missing, or left out as invalid)."""
    url = f"{api_url.rstrip('/')}/api/http/services/{service}"
    import httpx

    try:
        with http_client(ClientSettings(timeout=timeout)) as client:
            response = client.get(url)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RouterError(f"Traefik's API at {url} answered HTTP {response.status_code}")
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RouterError(
            f"cannot read Traefik's API at {url}: {exc}; check router.api_url (Traefik's "
            "--api entrypoint, reachable from where the stage runs)"
        ) from None
    weighted = body.get("weighted") if isinstance(body, Mapping) else None
    backends = weighted.get("services") if isinstance(weighted, Mapping) else None
    if not isinstance(backends, list):
        raise RouterError(f"Traefik's API at {url} shows no weighted service: {body}")
    return {
        str(b.get("name", "")).split("@", 1)[0]: int(b.get("weight", 1) or 0)
        for b in backends
        if isinstance(b, Mapping)
    }


def wait_applied(api_url: str, service: str, expected: Mapping[str, int], timeout: float) -> None:
    """Wait until Traefik applies exactly ``expected`` (backend -> weight) for ``service``;
    RouterError naming what it applies after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (applied := applied_backends(api_url, service)) != dict(expected):
        if time.monotonic() > deadline:
            now = "nothing (the TraefikService is not built)" if applied is None else applied
            raise RouterError(
                f"Traefik ({api_url}) still applies {now} for {service} {timeout:g}s after "
                f"the change, expected {dict(expected)}; Traefik's log says why it refused "
                "the TraefikService (a Service it names without a serving endpoint, or gone)"
            )
        time.sleep(POLL)

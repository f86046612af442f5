"""``router`` with ``type = \"traefik\"``."""

from __future__ import annotations

from typing import Literal

from pytest_release.canary.platforms.kubernetes.config import ServiceRouterConfig


class TraefikRouterConfig(ServiceRouterConfig):
    """``router`` with ``type = "traefik"``: the weighted ``TraefikService`` in front of the
    main and canary Services, changed with JSON merge patches."""

    type: Literal["traefik"]
    """Traefik TraefikService weights."""
    api_version: Literal["auto", "traefik.io/v1alpha1", "traefik.containo.us/v1alpha1"] = "auto"
    """auto: traefik.io/v1alpha1, falling back to traefik.containo.us/v1alpha1 (Traefik before v3)
    when the cluster does not serve it."""
    api_url: str | None = None
    """Traefik's API (its --api entrypoint, e.g. http://traefik:8080), reachable from where the
    stage runs: a Service leaves the TraefikService, and is deleted only once Traefik reports the
    change applied (GET /api/http/services); unset: router.drain_delay is waited instead (keep it
    above Traefik's providersThrottleDuration, 2 s by default)."""

"""``router`` with ``type = \"gateway\"``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pytest_release.canary.platforms.kubernetes.config import ServiceRouterConfig


class GatewayRouterConfig(ServiceRouterConfig):
    """``router`` with ``type = "gateway"``: the ``backendRefs`` weights of one rule of a
    Gateway API ``HTTPRoute``, changed with JSON merge patches."""

    type: Literal["gateway"]
    """Gateway API HTTPRoute weights."""
    rule: int = Field(default=0, ge=0)
    """Index of the HTTPRoute rule to weight."""
    parent_gateway: str | None = None
    """Gateway an HTTPRoute created here attaches to."""
    api_version: Literal["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"] = (
        "gateway.networking.k8s.io/v1"
    )
    """HTTPRoute API version."""

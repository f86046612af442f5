"""``router`` with ``type = "haproxy"`` (the default; local platforms)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.types import Duration

# One thing for the front and the metrics port: one environment's front port cannot be
# another's metrics port either.
_PORT = "port HAProxy listens on (127.0.0.1)"


class HAProxyConfig(BaseModel):
    """``[tool.pytest-release.gates.canary.router]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(default="haproxy", pattern="^haproxy$")
    """haproxy: a local HAProxy started and steered by pytest-release (local platforms)."""
    binary: str = "haproxy"
    """The HAProxy executable: a name looked up on PATH, or a path."""
    port: int = Field(default=0, ge=0, le=65535)
    """Frontend port on 127.0.0.1 (0: pick a free one)."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve HAProxy's built-in Prometheus exporter (per-server counters, haproxy_server_*) on
    127.0.0.1:PORT/metrics for Prometheus to scrape; unset: off."""
    slots: int = Field(default=8, ge=2, le=64)
    """Server slots (stable + canary replicas at most)."""
    drain_timeout: Duration = 10.0
    """Seconds a replica leaving the router (weight 0) gets to finish its in-flight requests before
    it goes into maintenance."""
    timeout_connect: Duration = 2.0
    """HAProxy 'timeout connect': seconds to establish a connection to a replica."""
    timeout_server: Duration = 30.0
    """HAProxy 'timeout server': seconds a replica may stay silent while answering a request before
    HAProxy gives up on it."""

    def exporter_lines(self, host: str) -> list[str]:
        """The HAProxy config of the Prometheus exporter frontend (none without a port)."""
        if self.metrics_port is None:
            return []
        return [
            "frontend metrics",
            f"    bind {host}:{self.metrics_port}",
            "    http-request use-service prometheus-exporter",
        ]

    def deployment_claims(self, platform: object) -> tuple[DeploymentClaim, ...]:
        """Fixed ports on 127.0.0.1 (0 picks a free port once per state directory, which
        the platform claims)."""
        claims = []
        if self.port:
            claims.append(
                DeploymentClaim(
                    _PORT,
                    (("router.port", self.port),),
                    "its own router.port (or router.port = 0: a free port picked once)",
                )
            )
        if self.metrics_port is not None:
            claims.append(
                DeploymentClaim(
                    _PORT,
                    (("router.metrics_port", self.metrics_port),),
                    "its own router.metrics_port",
                )
            )
        return tuple(claims)

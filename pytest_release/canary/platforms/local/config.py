"""``platform`` with ``type = "local-process"`` or ``"local-docker"``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_release.config.identity import DeploymentClaim, same_path
from pytest_release.config.types import (
    Duration,
    EnvVars,
    EnvVarsPerKey,
    HttpPath,
    PositiveDuration,
)


class LocalPlatformConfig(BaseModel):
    """``[tool.pytest-release.gates.canary.platform]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["local-process", "local-docker"] = "local-process"
    """local-process: every replica is a process started from command (and restarted by a
    supervisor); local-docker: every replica is a container of the image, with host networking."""
    state_dir: str = ".pytest-release/canary"
    """Where the platform and router keep their state (relative to the rootdir)."""
    command: tuple[str, ...] = ()
    """local-process: the replica command, e.g. ['python3', 'app.py', '--port', '{port}'];
    local-docker: overrides the image's CMD. Placeholders: {port}, {image}, {replica}."""
    env: EnvVars = Field(default_factory=dict)
    """Environment of every replica (same placeholders)."""
    image_env: EnvVarsPerKey = Field(default_factory=dict)
    """Extra environment for the replicas of one image/version."""
    cwd: str | None = None
    """local-process working directory."""
    stable_image: str | None = None
    """The version the main deployment runs when none runs yet (bootstrap)."""
    stable_replicas: int = Field(default=1, ge=1, le=16)
    """Replicas of the main deployment when it is started from stable_image (1 to 16). The canary's
    count is the stage's rollout.replicas."""
    health_path: HttpPath = "/health"
    """HTTP path of every replica that must answer 2xx/3xx for the replica to count as ready; also
    the path of the sampler's health probes. Must start with '/'."""
    ready_timeout: PositiveDuration = 60.0
    """Seconds new replicas have to become ready (health_path answering) before the deploy step
    fails."""
    stop_timeout: Duration = 10.0
    """Seconds a stopping replica gets after SIGTERM (docker: container stop timeout) before it is
    killed."""

    @model_validator(mode="after")
    def _command_needed(self) -> LocalPlatformConfig:
        if self.type == "local-process" and not self.command:
            raise ValueError(
                "platform.type 'local-process' needs platform.command, the replica command "
                "template, e.g. command = ['python3', 'app.py', '--port', '{port}']"
            )
        return self

    def deployment_claims(self) -> tuple[DeploymentClaim, ...]:
        """The state directory is the deployment: its replicas, the router's HAProxy and
        admin socket, and (local-docker) the label of its containers all derive from it."""
        return (
            DeploymentClaim(
                "local platform state directory (its replicas, HAProxy and admin socket)",
                (("platform.state_dir", same_path(self.state_dir)),),
                "its own platform.state_dir, e.g. state_dir = '.pytest-release/{environment}'",
            ),
        )

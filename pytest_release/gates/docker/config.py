"""``[tool.pytest-release.gates.<name>]`` with ``kind = "docker"``."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from pytest_release.config.tables import GateConfig
from pytest_release.config.types import Duration, EnvVars, HttpPath
from pytest_release.gates.docker.scan_config import ScanConfig

KIND = "docker"
DEFAULT_SECRET_NAMES = (
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*KEY*",
    "*CREDENTIAL*",
    "*PRIVATE*",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Keys that say "this gate is configured on purpose": without any of them and without a
# Dockerfile the (default) gate has nothing to check and generates no items.
EXPLICIT_KEYS = frozenset(
    {"build", "context", "dockerfile", "build_args", "tag", "port", "health_path", "env"}
)


class DockerGateConfig(GateConfig):
    """Build the service image, run it on the host network, check it.

    Example::

        [tool.pytest-release.gates.docker]
        kind = "docker"
        context = "."
        dockerfile = "Dockerfile"
        build_args = { PYTHON_VERSION = "3.12" }
        port = 8000
        health_path = "/health"
        env = { APP_ENV = "ci" }
        pass_env = ["DATABASE_URL"]
        required_env = ["APP_ENV", "DATABASE_URL"]
        max_image_size_mb = 300
    """

    kind: str = KIND
    build: bool = True
    """Build the image from context/dockerfile; false: use the existing local image named by --image
    or tag (it is not removed afterwards)."""
    context: str = "."
    """Build context, relative to the rootdir."""
    dockerfile: str = "Dockerfile"
    """Relative to the context."""
    build_args: dict[str, str] = Field(default_factory=dict)
    """Build arguments (ARG)."""
    tag: str | None = None
    """Image reference; --image wins; default pytest-release/<gate>:<run id>."""
    keep_image: bool = False
    """Keep the built image after the session (it is removed)."""
    push: bool = False
    """After the checks, push the image reference and push_tags to their registries (item 'push'),
    verifying each through the registry."""
    push_tags: tuple[str, ...] = ()
    """More references to tag and push; placeholders {repository} (the image reference without its
    tag), {release_id}, {release_short} (its first 12 characters), {stage}."""
    command: tuple[str, ...] | None = None
    """Override the image's CMD."""
    env: EnvVars = Field(default_factory=dict)
    """Environment of the container."""
    pass_env: tuple[str, ...] = ()
    """Variables copied from the environment of pytest into the container (their values are redacted
    everywhere)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Port the service listens on (127.0.0.1)."""
    health_path: HttpPath | None = None
    """HTTP path probed on 127.0.0.1:port until it answers 2xx."""
    health_timeout: Duration = 60.0
    """How long the container may take to become healthy."""
    stay_up: Duration = 2.0
    """The container must still run this long after becoming healthy."""
    required_env: tuple[str, ...] = ()
    """Variables that must be set (non-empty) in the container."""
    env_endpoint: HttpPath | None = None
    """HTTP path returning the service's view of its environment as a JSON object; required_env and
    env must be visible there."""
    max_image_size_mb: float | None = Field(default=None, gt=0)
    """Image size budget in MB (1 MB = 1,000,000 bytes)."""
    require_non_root: bool = True
    """Fail when a process of the container runs as uid 0."""
    user: str | None = None
    """Expected user (name or uid) the container runs as."""
    secret_names: tuple[str, ...] = DEFAULT_SECRET_NAMES
    """Glob patterns of variable/label names that must not carry a value in the image."""
    allowed_env: tuple[str, ...] = ()
    """Names exempt from the secret check (e.g. GPG_KEY)."""
    log_lines: int = Field(default=200, ge=1)
    """Container log lines attached to failures."""
    scan: ScanConfig | None = None
    """Vulnerability scan of the image against an OSV export (items 'vulnerability-scan' and
    'vulnerabilities'), e.g. { osv = 'security/osv', allow = [{ id = 'GHSA-...', reason = '...',
    expires = 2027-01-31 }] }; docs/perf-and-scan.md."""

    @field_validator("pass_env", "required_env", "allowed_env")
    @classmethod
    def _env_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not _ENV_NAME.match(name)]
        if bad:
            raise ValueError(
                f"not environment variable names: {', '.join(map(repr, bad))} "
                "(letters, digits and '_', not starting with a digit)"
            )
        return value

    @model_validator(mode="after")
    def _needs_port(self) -> DockerGateConfig:
        for key in ("health_path", "env_endpoint"):
            if getattr(self, key) is not None and self.port is None:
                raise ValueError(
                    f"{key} = {getattr(self, key)!r} needs 'port', the port the service "
                    "listens on at 127.0.0.1 (the container uses the host network)"
                )
        return self

    def explicitly_configured(self) -> bool:
        return bool(EXPLICIT_KEYS & self.model_fields_set)

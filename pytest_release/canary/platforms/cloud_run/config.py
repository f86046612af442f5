"""``platform`` with ``type = "cloud-run"`` and ``router`` with ``type = "cloud-run"``
(pydantic only, light import)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pytest_release.canary.router import RouterCapabilities
from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.types import HttpPath, PositiveDuration

_TAG_RULE = (
    re.compile(r"^[a-z]([-a-z0-9]{0,44}[a-z0-9])?$"),
    "traffic tag",
    "is not valid: use at most 46 lower-case letters, digits and '-', starting with a letter",
)
# The Google Cloud names a field holds: (pattern, what the value is called, what is wrong
# with one that does not match and what is allowed instead).
_NAME_RULES: dict[str, tuple[re.Pattern[str], str, str]] = {
    "project": (
        re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"),
        "project",
        "is not a Google Cloud project ID: use 6 to 30 lower-case letters, digits and '-', "
        "starting with a letter (the ID, not the project name or number)",
    ),
    "region": (
        re.compile(r"^[a-z]+-[a-z]+[0-9]+$"),
        "region",
        "is not a Cloud Run region such as 'europe-west1' or 'us-central1'",
    ),
    "service": (
        re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$"),
        "service",
        "is not a Cloud Run service name: use at most 49 lower-case letters, digits and '-', "
        "starting with a letter and not ending with '-'",
    ),
    "stable_tag": _TAG_RULE,
    "canary_tag": _TAG_RULE,
    "previous_tag": _TAG_RULE,
}


class CloudRunPlatformConfig(BaseModel):
    """``[tool.pytest-release.gates.canary.platform]`` with ``type = "cloud-run"``: the
    revisions of one Cloud Run service. The main revision carries the traffic tag
    ``stable_tag``, the canary revision ``canary_tag`` and the main revision before the
    last promotion ``previous_tag``; traffic is split by the service itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cloud-run"]
    """Run the service on Cloud Run (Admin API v2): the canary is a new revision of the service,
    traffic is split by percent between revisions."""
    project: str
    """Google Cloud project ID of the service."""
    region: str
    """Region of the service, e.g. europe-west1."""
    service: str
    """Name of the Cloud Run service (it must exist)."""
    container: str | None = None
    """Name of the container whose image is released; unset: the first."""
    health_path: HttpPath = "/health"
    """Path the hold probes on every revision's tag URL."""
    stable_tag: str = "stable"
    """Traffic tag of the main revision."""
    canary_tag: str = "canary"
    """Traffic tag of the canary revision."""
    previous_tag: str = "previous"
    """Traffic tag (0 %) of the main revision before the last promotion: the revision a rollback
    returns to."""
    api_endpoint: str | None = None
    """Admin API endpoint, e.g. http://127.0.0.1:8089 for an emulator; unset: run.googleapis.com
    (REST over HTTPS)."""
    credentials: Literal["application-default", "anonymous"] = "application-default"
    """application-default: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud
    auth application-default login, or the metadata server); anonymous: no credentials (an
    emulator only)."""
    operation_timeout: PositiveDuration = 600.0
    """How long a long-running operation (new revision, traffic change, revision deletion) may take
    before the step fails."""
    request_timeout: PositiveDuration = 30.0
    """Timeout of one request to the Admin API."""
    etag_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts of a service update whose etag another writer changed meanwhile (each attempt
    re-reads the service) before the step fails."""

    @field_validator(*_NAME_RULES)
    @classmethod
    def _google_name(cls, value: str, info: ValidationInfo) -> str:
        pattern, what, problem = _NAME_RULES[info.field_name or ""]
        if not pattern.match(value):
            raise ValueError(f"{what} {value!r} {problem}")
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(https?://)?[^/\s]+$", value):
            raise ValueError(
                f"api_endpoint {value!r} must be a host[:port], optionally with http:// or "
                "https://, and no path, e.g. http://127.0.0.1:8089"
            )
        return value

    @model_validator(mode="after")
    def _distinct_tags(self) -> CloudRunPlatformConfig:
        tags = [self.stable_tag, self.canary_tag, self.previous_tag]
        if len(set(tags)) != 3:
            raise ValueError(
                f"stable_tag, canary_tag and previous_tag must differ, got {tags}: each marks "
                "another revision"
            )
        if self.credentials == "anonymous" and self.api_endpoint is None:
            raise ValueError(
                "credentials = 'anonymous' is for an emulator: set api_endpoint to it (the "
                "real Admin API refuses anonymous requests), or use 'application-default'"
            )
        return self

    @property
    def location(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def service_name(self) -> str:
        """The service's resource name."""
        return f"{self.location}/services/{self.service}"

    def deployment_claims(self) -> tuple[DeploymentClaim, ...]:
        """The service: its revisions, tags and traffic split are the deployment (unset
        api_endpoint: the real Admin API)."""
        return (
            DeploymentClaim(
                "Cloud Run service",
                (
                    ("platform.api_endpoint", self.api_endpoint),
                    ("platform.project", self.project),
                    ("platform.region", self.region),
                    ("platform.service", self.service),
                ),
                "its own platform.service (e.g. service = 'shop-{environment}'), region or project",
            ),
        )


class CloudRunRouterConfig(BaseModel):
    """``router`` with ``type = "cloud-run"``: the service's own traffic split (the
    ``traffic`` of the service, read back from its ``traffic_statuses``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["cloud-run"]
    """The Cloud Run service splits traffic between its revisions itself."""
    url: str | None = None
    """Where clients reach the service (e.g. a custom domain); unset: the service's URL as the API
    reports it."""

    def deployment_claims(self, platform: object) -> tuple[DeploymentClaim, ...]:
        """Nothing of its own: the traffic split is the service's (the platform claims it)."""
        return ()


# What the router of ``type = "cloud-run"`` declares (here, not in its module, so that
# the entry point loads no client library): percent weights per revision; no
# per-revision counters are read; the platform tags its revisions into the split itself.
CAPABILITIES = RouterCapabilities(members="platform")

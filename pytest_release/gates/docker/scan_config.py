"""The docker gate's ``scan`` table: the image's packages against OSV advisories.

Example::

    [tool.pytest-release.gates.docker]
    scan = { osv = "security/osv", allow = [
        { id = "GHSA-q2q7-5pp4-w6pg", reason = "only the CLI uses it", expires = 2027-01-31 },
    ] }
"""

from __future__ import annotations

import datetime

from pydantic import BaseModel, ConfigDict, field_validator

from pytest_release.config.types import PositiveDuration


class AllowEntry(BaseModel):
    """An accepted finding: an advisory id (or alias), why, and until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Advisory id or one of its aliases (CVE-..., GHSA-...)."""
    reason: str
    """Why the finding is accepted; shown in reports."""
    expires: datetime.date
    """Last day the allowance holds (YYYY-MM-DD); after it the finding fails again, saying the
    allowance expired."""
    package: str | None = None
    """Only for this package (name); unset: any package."""

    @field_validator("id", "reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: an allowance needs an advisory id and a reason")
        return value.strip()


class ScanConfig(BaseModel):
    """Vulnerability scan of the image's Python distributions and Debian packages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    osv: str
    """OSV export (relative to the rootdir): a directory of OSV JSON files or a zip of them, as OSV
    publishes per ecosystem. Missing or unreadable: the scan fails."""
    allow: tuple[AllowEntry, ...] = ()
    """Accepted findings: [{ id = '...', reason = '...', expires = 2027-01-31 }]."""
    python: bool = True
    """Scan the Python distributions (importlib.metadata)."""
    debian: bool = True
    """Scan the Debian packages (dpkg-query -W) when the image has dpkg."""
    trivy: bool = True
    """Use Trivy (`trivy image`) instead of the OSV export when `trivy` is on PATH."""
    timeout: PositiveDuration = 180.0
    """Seconds for listing the image's packages (or for Trivy)."""

    @field_validator("osv")
    @classmethod
    def _osv(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; name the OSV export (a directory or zip of OSV JSON files)")
        return value

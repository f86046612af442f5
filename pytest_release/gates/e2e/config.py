"""The ``e2e`` gate's table (``kind = "e2e"``): pytest-playwright settings for the gate's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

from pytest_release.config.tables import GateConfig

if TYPE_CHECKING:
    pass


KIND = "e2e"
ATTACHMENT = "attachment"
# pytest-playwright's options this gate gives a default, with that plugin's own default.
PLAYWRIGHT_DEFAULTS = {"output": "test-results", "screenshot": "off", "tracing": "off"}


class E2EGateConfig(GateConfig):
    kind: str = KIND
    base_url: str | None = None
    """Base URL of the target (``page.goto('/')``)."""
    executable_path: str | None = None
    """Browser executable, e.g. /usr/bin/chromium (Debian's Chromium); unset or "": the browser
    `playwright install chromium` installed (e.g. a CI profile layered over a local configuration
    sets "")."""
    args: tuple[str, ...] = ()
    """Browser command-line arguments."""
    headless: bool = True
    """Run the browser without a window."""
    screenshot: Literal["on", "off", "only-on-failure"] = "only-on-failure"
    """pytest-playwright --screenshot default."""
    tracing: Literal["on", "off", "retain-on-failure"] = "retain-on-failure"
    """pytest-playwright --tracing default."""
    output: str | None = None
    """Artifacts directory relative to the rootdir; default <reports-dir>/<stage>/e2e."""

    @field_validator("executable_path")
    @classmethod
    def _executable(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                "must be an absolute http:// or https:// URL, e.g. 'http://127.0.0.1:8000'"
            )
        return value

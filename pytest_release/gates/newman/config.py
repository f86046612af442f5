"""The ``newman`` gate's table (``kind = "newman"``) and its constants."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from pytest_release.config import GateConfig
from pytest_release.config.types import parse_positive_duration
from pytest_release.gates.tool_command import refuse_empty_paths, refuse_reserved_flags

if TYPE_CHECKING:
    pass


KIND: Literal["newman"] = "newman"
STATUS_NAME = "(newman run)"
DEFAULT_COLLECTIONS = (
    "tests/newman/*.postman_collection.json",
    "suites/newman/*.postman_collection.json",
)
LOCAL_BINARY = "node_modules/.bin/newman"
INSTALL_HINT = (
    "install it with `npm install --save-dev newman@6` in {rootdir} (or `npm install -g "
    'newman@6`), or set newman = "path/to/newman" in [tool.pytest-release.gates.{gate}]'
)
# Postman variable names whose values are credentials (matched case-insensitively).
SECRET_VARIABLES = (
    "*token*",
    "*password*",
    "*passwd*",
    "*secret*",
    "*apikey*",
    "*api_key*",
    "*api-key*",
    "*credential*",
    "*private*key*",
)
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# newman flags the gate sets itself, with the key to use instead.
_RESERVED_FLAGS = {
    "-r": "(the gate needs its JSON reporter)",
    "--reporters": "(the gate needs its JSON reporter)",
    "--reporter-json-export": "(the gate reads the report itself)",
    "-e": "environment",
    "--environment": "environment",
    "-g": "globals",
    "--globals": "globals",
    "-d": "iteration_data",
    "--iteration-data": "iteration_data",
    "-n": "iterations",
    "--iteration-count": "iterations",
    "--env-var": "env_vars",
    "--global-var": "global_vars",
    "--timeout": "timeout",
    "--timeout-request": "timeout_request",
    "--timeout-script": "timeout_script",
    "--bail": "bail",
    "--folder": "(items are made from the whole collection)",
    "-x": "(the gate does not trust the exit code alone anyway)",
    "--suppress-exit-code": "(the gate does not trust the exit code alone anyway)",
}


class NewmanGateConfig(GateConfig):
    """A gate whose items are the requests of Postman collections, run by newman."""

    kind: Literal["newman"] = KIND
    collections: tuple[str, ...] = DEFAULT_COLLECTIONS
    """Glob patterns (relative to the rootdir) of Postman collection files (v2.1). A configured
    pattern that matches nothing is a failure."""
    environment: str | None = None
    """Postman environment file."""
    globals: str | None = None
    """Postman globals file."""
    iteration_data: str | None = None
    """JSON array or CSV file; one iteration per row."""
    iterations: int | None = Field(default=None, ge=1)
    """newman -n."""
    env_vars: dict[str, str] = Field(default_factory=dict)
    """--env-var overrides; ${NAME} is replaced by the environment variable."""
    global_vars: dict[str, str] = Field(default_factory=dict)
    """--global-var."""
    timeout: float = 600.0
    """Seconds for the whole newman run."""
    timeout_request: float | None = None
    """Seconds per request (newman --timeout-request); unset: newman's default, no limit."""
    timeout_script: float | None = None
    """Seconds per pre-request or test script (newman --timeout-script); unset: newman's default, no
    limit."""
    newman: str | None = Field(
        default=None,
        description="newman executable (path relative to the rootdir, or a name on PATH). "
        f"Default: <rootdir>/{LOCAL_BINARY}, then newman on PATH.",
    )
    bail: bool = False
    """Stop the run at the first failure (newman --bail); the requests not run are reported as
    skipped."""
    args: tuple[str, ...] = ()
    """Further newman command-line flags."""
    secret_variables: tuple[str, ...] = SECRET_VARIABLES
    """Glob patterns (case-insensitive) of Postman variable names whose values are masked in every
    report, as the values of `secrets` are: variables of the environment and globals files, of
    the collections, and of env_vars and global_vars. Variables of `"type": "secret"` are masked
    whatever their name; [] masks only those."""

    @field_validator("timeout", "timeout_request", "timeout_script", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        if value is None:
            return None
        return parse_positive_duration(value, "must be a positive duration such as '30s' or '10m'")

    @field_validator("collections")
    @classmethod
    def _collections(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(
                "lists no collection; give glob patterns such as "
                "['tests/newman/*.postman_collection.json']"
            )
        if any(not pattern.strip() for pattern in value):
            raise ValueError("contains an empty pattern")
        return value

    @field_validator("env_vars", "global_vars")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or "=" in key:
                raise ValueError(
                    f"variable name {key!r} is invalid: it must be non-empty and contain no '='"
                )
        return value

    @field_validator("secret_variables")
    @classmethod
    def _secret_variables(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not pattern.strip():
                raise ValueError(
                    f"contains an empty pattern ({pattern!r}); give glob patterns of variable "
                    "names such as '*token*', or [] to mask only variables of type secret"
                )
        return value

    @field_validator("args")
    @classmethod
    def _args(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        reporters = {"--reporter-": "(the gate needs its JSON reporter)"}
        refuse_reserved_flags("newman", value, _RESERVED_FLAGS, reporters)
        return value

    @model_validator(mode="after")
    def _paths(self) -> NewmanGateConfig:
        refuse_empty_paths(self, ("environment", "globals", "iteration_data", "newman"))
        return self


def is_secret_variable(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether the Postman variable ``name`` holds a credential (``secret_variables``)."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)

"""Configuration of a ``kind = "lint"`` gate.

```toml
[tool.pytest-release.gates.lint]
tools = ["ruff-check", "ruff-format", "mypy"]    # default
targets = ["src", "tests"]                       # default ["."]
timeout = "10m"                                  # per tool run, default 15m
cache = true                                     # default

[tool.pytest-release.gates.lint.options.mypy]
targets = []                  # [] = no paths on the command line: mypy's own config decides
args = ["--strict"]           # appended after the adapter's flags
command = ["python", "-m", "mypy"]   # replaces the executable (default: `mypy` next to
                                     # the interpreter running pytest, else on PATH)
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_release.config.tables import GateConfig
from pytest_release.config.types import parse_positive_duration
from pytest_release.gates.lint.tools import DEFAULT_TOOLS, TOOLS


def _allowed() -> str:
    return ", ".join(TOOLS)


def _check_tool(name: str) -> str:
    if name not in TOOLS:
        raise ValueError(f"unknown lint tool {name!r}; allowed tools: {_allowed()}")
    return name


class LintToolOptions(BaseModel):
    """Per-tool settings (``[gates.<name>.options.<tool>]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: tuple[str, ...] | None = None
    """Program to run instead of the tool's executable, e.g. ['python', '-m', 'mypy']; the adapter's
    own arguments follow it."""
    args: tuple[str, ...] = ()
    """Extra arguments, after the adapter's, before the targets."""
    targets: tuple[str, ...] | None = None
    """Paths this tool checks instead of the gate's targets; [] passes none (the tool's own
    configuration decides)."""

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not value[0].strip()):
            raise ValueError(
                "command must name a program, e.g. ['python', '-m', 'mypy']; "
                "remove the key to use the default"
            )
        return value


class LintGateConfig(GateConfig):
    """A gate whose items are the findings of lint tools run once per session."""

    kind: Literal["lint"] = "lint"
    tools: tuple[str, ...] = Field(
        default=DEFAULT_TOOLS, description=f"Tools to run, in order; known: {_allowed()}."
    )
    targets: tuple[str, ...] = (".",)
    """Files and directories (relative to the rootdir) to check."""
    options: dict[str, LintToolOptions] = Field(default_factory=dict)
    """Per-tool settings, one table per tool: [gates.<name>.options.<tool>] with command, args and
    targets."""
    timeout: float = 900.0
    """How long one tool may run (duration) before it is killed."""
    cache: bool = True
    """Reuse a tool's result while its version, configuration, arguments and the checked files are
    unchanged (.pytest-release/cache/lint/)."""

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"list at least one lint tool; allowed tools: {_allowed()}")
        for name in value:
            _check_tool(name)
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"tool(s) listed twice: {', '.join(duplicates)}")
        return value

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one path to check, e.g. ['.'] or ['src', 'tests']")
        for target in value:
            if not target.strip():
                raise ValueError("a target cannot be empty; use '.' for the whole rootdir")
        return value

    @field_validator("options")
    @classmethod
    def _known_option_tools(cls, value: dict[str, LintToolOptions]) -> dict[str, LintToolOptions]:
        for name in value:
            _check_tool(name)
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> float:
        return parse_positive_duration(value, "timeout must be positive")

    @model_validator(mode="after")
    def _options_for_listed_tools(self) -> LintGateConfig:
        unused = [name for name in self.options if name not in self.tools]
        if unused:
            raise ValueError(
                f"options given for tool(s) not in tools: {', '.join(unused)} "
                f"(tools = {list(self.tools)}); add them to tools or remove their options"
            )
        return self

    def tool_options(self, tool: str) -> LintToolOptions:
        return self.options.get(tool) or LintToolOptions()

    def tool_targets(self, tool: str) -> tuple[str, ...]:
        targets = self.tool_options(tool).targets
        return self.targets if targets is None else targets

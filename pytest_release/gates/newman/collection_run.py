"""Running newman for one collection, once per session across processes, and finding the
newman executable."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_release.errors import GateSetupError
from pytest_release.gates.newman.collection import (
    Collection,
)
from pytest_release.gates.newman.config import (
    ENV_REFERENCE,
    INSTALL_HINT,
    LOCAL_BINARY,
    STATUS_NAME,
    NewmanGateConfig,
)
from pytest_release.gates.newman.runner import (
    NewmanCommand,
    RunOutcome,
    failed,
    run_newman,
)
from pytest_release.gates.tool_command import installed_executable, resolve_path
from pytest_release.gates.tool_verdict import stage_session

if TYPE_CHECKING:
    pass


# -- run time -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CollectionRun:
    """Runs newman for one collection, once per session across processes."""

    gate_name: str
    gate: NewmanGateConfig
    rootdir: Path
    collection: Collection
    key: str
    iterations: int
    setup_problem: str | None

    @property
    def status_name(self) -> str:
        return f"{self.key}::{STATUS_NAME}"

    @cached_property
    def expected_names(self) -> dict[int, str]:
        return {spec.position: spec.name for spec in self.collection.requests}

    def outcome(self, config: pytest.Config) -> RunOutcome:
        session = stage_session(config)
        run_key = f"newman:{self.gate_name}:{self.collection.path}"
        export = session.run_dir.path / (
            "newman-" + hashlib.sha256(run_key.encode()).hexdigest()[:16] + ".json"
        )
        value = session.run_dir.run_once(run_key, lambda: self._masked_run(export, session.redact))
        return RunOutcome.from_json(cast("Mapping[str, Any]", value))

    def _masked_run(self, export: Path, redact: Callable[[str], str]) -> dict[str, Any]:
        """Run newman, then mask secrets in what it printed and reported: the condensed
        outcome (shared with xdist workers through the run dir) and its JSON report."""
        outcome = _masked(self._run(export).to_json(), redact)
        with suppress(OSError, ValueError):
            report = json.loads(export.read_text(encoding="utf-8"))
            export.write_text(json.dumps(_masked(report, redact)), encoding="utf-8")
        return cast("dict[str, Any]", outcome)

    def _run(self, export: Path) -> RunOutcome:
        if self.setup_problem is not None:
            return failed(f"newman was not started: {self.setup_problem}")
        try:
            binary = resolve_newman(self.gate.newman, self.rootdir, self.gate_name)
        except NewmanSetupError as exc:
            return failed(str(exc))
        try:
            command = self.command(binary, export)
        except NewmanSetupError as exc:
            return failed(f"newman was not started: {exc}")
        try:
            return run_newman(command, cwd=self.rootdir)
        except Exception as exc:  # an unexpected crash must still fail the status item
            return failed(f"running newman failed unexpectedly: {exc!r}")

    def command(self, binary: str, export: Path) -> NewmanCommand:
        gate = self.gate

        def optional(value: str | None) -> Path | None:
            return None if value is None else resolve_path(self.rootdir, value)

        return NewmanCommand(
            binary=binary,
            collection=self.collection.path,
            export=export,
            environment=optional(gate.environment),
            globals=optional(gate.globals),
            iteration_data=optional(gate.iteration_data),
            iterations=gate.iterations,
            env_vars=tuple(_expand(gate.env_vars, "env_vars").items()),
            global_vars=tuple(_expand(gate.global_vars, "global_vars").items()),
            timeout=gate.timeout,
            timeout_request=gate.timeout_request,
            timeout_script=gate.timeout_script,
            bail=gate.bail,
            args=gate.args,
        )


class NewmanSetupError(GateSetupError):
    """newman cannot be started (not installed, bad variable reference)."""


def resolve_newman(configured: str | None, rootdir: Path, gate_name: str) -> str:
    """The newman executable: the configured one, else ``<rootdir>/node_modules/.bin``,
    else PATH; :class:`NewmanSetupError` with the install command when none exists."""
    hint = INSTALL_HINT.format(rootdir=rootdir, gate=gate_name)
    local = rootdir / LOCAL_BINARY
    try:
        return installed_executable(configured, rootdir, "newman", "newman", gate_name, hint, local)
    except LookupError as exc:
        raise NewmanSetupError(str(exc)) from None


def _masked(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (parsed JSON) with every string value masked (keys are newman's own
    field names, and the outcome's, which must stay)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _masked(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):  # the outcome's dataclasses.asdict keeps tuples
        return [_masked(v, redact) for v in value]
    return value


def expand_known(value: str) -> str:
    """``value`` with each ``${NAME}`` replaced by the environment variable, where set (a
    name not set is left: the run reports it)."""
    return ENV_REFERENCE.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)


def _expand(variables: Mapping[str, str], key: str) -> dict[str, str]:
    expanded: dict[str, str] = {}
    for name, value in variables.items():

        def replace(match: re.Match[str], name: str = name) -> str:
            env = match.group(1)
            if env not in os.environ:
                raise NewmanSetupError(
                    f"{key}.{name} refers to ${{{env}}}, but the environment variable {env} is "
                    "not set; export it (and list it in [tool.pytest-release] secrets if it is "
                    "a secret)"
                )
            return os.environ[env]

        expanded[name] = ENV_REFERENCE.sub(replace, value)
    return expanded

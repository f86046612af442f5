"""The ``newman`` gate: Postman collections run by newman, one item per request.

Collection time (every process, no newman run): each collection file matched by the
``collections`` globs is parsed; its requests become items named
``<collection>::<folder>/<request>`` (``[iteration N]`` appended when the collection
runs more than once), preceded by a status item ``<collection>::(newman run)``.

Run time: the first item of a collection to run starts newman once for the whole
session (also under xdist, through :meth:`RunDir.run_once`) with ``-r json``; every item
reads its own result from the condensed report.  The status item fails whenever newman
did not complete a run with a consistent report, so a newman that did not run (missing,
bad environment file, timeout, crash) can never look green.

Configuration (``[tool.pytest-release.gates.<name>]`` with ``kind = "newman"``)::

    collections = ["tests/newman/*.postman_collection.json"]
    environment = "tests/newman/ci.postman_environment.json"
    globals = "tests/newman/globals.json"
    iteration_data = "tests/newman/orders.csv"   # or iterations = 3
    env_vars = { baseUrl = "http://127.0.0.1:8000", token = "${API_TOKEN}" }
    global_vars = {}
    timeout = "10m"            # whole run (newman --timeout; killed 30 s later)
    timeout_request = "30s"
    timeout_script = "5s"
    newman = "node_modules/.bin/newman"   # default: <rootdir>/node_modules/.bin/newman, PATH
    bail = false
    args = ["--insecure"]     # other newman flags
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest
from pydantic import Field, field_validator, model_validator

from pytest_release.config import GateConfig
from pytest_release.config_types import parse_duration
from pytest_release.errors import GateCheckFailed, GateSetupError
from pytest_release.gate_node import GateItem, GateNode
from pytest_release.gates.newman.collection import (
    Collection,
    CollectionError,
    count_iteration_data,
    load_collection,
    read_json_file,
)
from pytest_release.gates.newman.runner import (
    NewmanCommand,
    RunOutcome,
    Verdict,
    failed,
    request_verdict,
    run_newman,
    status_verdict,
)

if TYPE_CHECKING:
    from pytest_release.stage import StageRun
    from pytest_release.stage_session import StageSession

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
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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
    collections: tuple[str, ...] = Field(
        default=DEFAULT_COLLECTIONS,
        description="Glob patterns (relative to the rootdir) of Postman collection files "
        "(v2.1). A configured pattern that matches nothing is a failure.",
    )
    environment: str | None = Field(default=None, description="Postman environment file.")
    globals: str | None = Field(default=None, description="Postman globals file.")
    iteration_data: str | None = Field(
        default=None, description="JSON array or CSV file; one iteration per row."
    )
    iterations: int | None = Field(default=None, ge=1, description="newman -n.")
    env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="--env-var overrides; ${NAME} is replaced by the environment variable.",
    )
    global_vars: dict[str, str] = Field(default_factory=dict, description="--global-var.")
    timeout: float = Field(default=600.0, description="Seconds for the whole newman run.")
    timeout_request: float | None = Field(
        default=None,
        description="Seconds per request (newman --timeout-request); unset: newman's "
        "default, no limit.",
    )
    timeout_script: float | None = Field(
        default=None,
        description="Seconds per pre-request or test script (newman --timeout-script); "
        "unset: newman's default, no limit.",
    )
    newman: str | None = Field(
        default=None,
        description="newman executable (path relative to the rootdir, or a name on PATH). "
        f"Default: <rootdir>/{LOCAL_BINARY}, then newman on PATH.",
    )
    bail: bool = Field(
        default=False,
        description="Stop the run at the first failure (newman --bail); the requests not "
        "run are reported as skipped.",
    )
    args: tuple[str, ...] = Field(default=(), description="Further newman command-line flags.")

    @field_validator("timeout", "timeout_request", "timeout_script", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError(f"must be a positive duration such as '30s' or '10m', got {value!r}")
        return seconds

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

    @field_validator("args")
    @classmethod
    def _args(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arg in value:
            flag = arg.split("=", 1)[0]
            if flag in _RESERVED_FLAGS or flag.startswith("--reporter-"):
                instead = _RESERVED_FLAGS.get(flag, "(the gate needs its JSON reporter)")
                use = instead if instead.startswith("(") else f"use the key '{instead}' instead"
                raise ValueError(f"newman flag {flag!r} is set by the gate; {use}")
        return value

    @model_validator(mode="after")
    def _paths(self) -> NewmanGateConfig:
        for key in ("environment", "globals", "iteration_data", "newman"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ValueError(f"{key} is empty; remove the key or name a file")
        return self


# -- hooks ----------------------------------------------------------------------------------
def pytest_release_gate_kinds() -> dict[str, type[GateConfig]]:
    return {KIND: NewmanGateConfig}


def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
    gate = gate_node.gate
    if not isinstance(gate, NewmanGateConfig):
        return None
    rootdir = gate_node.run.rootdir
    items: list[pytest.Item] = []
    files: list[Path] = []
    for pattern in dict.fromkeys(gate.collections):
        matched = _glob(rootdir, pattern)
        if matched:
            files += [path for path in matched if path not in files]
        elif "collections" in gate.model_fields_set:
            items.append(_missing_pattern_item(gate_node, rootdir, pattern))
    setup = _GateSetup.check(gate, gate_node.run)
    keys = _collection_keys(files, rootdir)
    for path in files:
        key = keys[path]
        try:
            collection = load_collection(path, gate_node.run.relative(path))
        except CollectionError as exc:
            items.append(
                NewmanProblemItem.from_parent(
                    gate_node,
                    name=f"{key}::{STATUS_NAME}",
                    source_path=path,
                    source_line=exc.line,
                    message=exc.message,
                )
            )
            continue
        items += _collection_items(gate_node, gate, setup, key, collection)
    return items


# -- collection time ------------------------------------------------------------------------
def _glob(rootdir: Path, pattern: str) -> list[Path]:
    if glob.has_magic(pattern):
        found = glob.glob(pattern, root_dir=rootdir, recursive=True)
        paths = [rootdir / p for p in found]
        return sorted(p for p in paths if p.is_file())
    path = rootdir / pattern
    return [path] if path.is_file() else []


def _missing_pattern_item(gate_node: GateNode, rootdir: Path, pattern: str) -> NewmanProblemItem:
    where = f"[tool.pytest-release.gates.{gate_node.gate_name}] collections"
    if glob.has_magic(pattern):
        message = (
            f"collections pattern {pattern!r} matches no file under {rootdir}; fix the pattern "
            f"in {where} or add the collection file"
        )
    else:
        message = (
            f"collection file {pattern} does not exist under {rootdir} (listed in {where}); "
            "fix the path or add the file"
        )
    return NewmanProblemItem.from_parent(
        gate_node, name=f"{pattern}::{STATUS_NAME}", source_path=None, message=message
    )


def _collection_keys(files: list[Path], rootdir: Path) -> dict[Path, str]:
    """Short, unique names: the file name without ``.postman_collection.json``/``.json``,
    or the repo-relative path when two files share a name."""

    def short(path: Path) -> str:
        name = path.name
        for suffix in (".postman_collection.json", ".json"):
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name

    shorts = [short(p) for p in files]
    keys: dict[Path, str] = {}
    for path, name in zip(files, shorts, strict=True):
        if shorts.count(name) > 1:
            try:
                name = path.relative_to(rootdir).as_posix()
            except ValueError:
                name = path.as_posix()
        keys[path] = name
    return keys


@dataclass(frozen=True)
class _GateSetup:
    """Gate-level inputs checked at collection: files exist, iteration count."""

    iterations: int
    problem: str | None

    @classmethod
    def check(cls, gate: NewmanGateConfig, run: StageRun) -> _GateSetup:
        problems: list[str] = []
        for key, what in (("environment", "environment"), ("globals", "globals")):
            value = getattr(gate, key)
            if value is not None:
                path = _resolve(run.rootdir, value)
                try:
                    read_json_file(path, what, run.relative(path))
                except CollectionError as exc:
                    problems.append(f"{exc.message} (gate key {key} = {value!r})")
        iterations = gate.iterations or 1
        if gate.iteration_data is not None:
            path = _resolve(run.rootdir, gate.iteration_data)
            try:
                rows = count_iteration_data(path, run.relative(path))
            except CollectionError as exc:
                problems.append(f"{exc.message} (gate key iteration_data)")
            else:
                iterations = gate.iterations or rows
        return cls(iterations=iterations, problem="\n".join(problems) or None)


def _resolve(rootdir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else rootdir / path


def _collection_items(
    gate_node: GateNode,
    gate: NewmanGateConfig,
    setup: _GateSetup,
    key: str,
    collection: Collection,
) -> list[pytest.Item]:
    runner = CollectionRun(
        gate_name=gate_node.gate_name,
        gate=gate,
        rootdir=gate_node.run.rootdir,
        collection=collection,
        key=key,
        iterations=setup.iterations,
        setup_problem=setup.problem,
    )
    items: list[pytest.Item] = [
        NewmanStatusItem.from_parent(
            gate_node,
            name=runner.status_name,
            source_path=collection.path,
            source_line=1,
            runner=runner,
        )
    ]
    seen: dict[str, int] = {STATUS_NAME: 1}
    names: list[str] = []
    for spec in collection.requests:
        seen[spec.path] = seen.get(spec.path, 0) + 1
        names.append(spec.path if seen[spec.path] == 1 else f"{spec.path} ({seen[spec.path]})")
    for iteration in range(setup.iterations):
        suffix = f"[iteration {iteration + 1}]" if setup.iterations > 1 else ""
        for spec, name in zip(collection.requests, names, strict=True):
            items.append(
                NewmanRequestItem.from_parent(
                    gate_node,
                    name=f"{key}::{name}{suffix}",
                    source_path=collection.path,
                    source_line=spec.line,
                    runner=runner,
                    position=spec.position,
                    request_name=spec.name,
                    iteration=iteration,
                )
            )
    return items


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
        value = session.run_dir.run_once(run_key, lambda: self._run(export).to_json())
        return RunOutcome.from_json(cast("Mapping[str, Any]", value))

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
            return None if value is None else _resolve(self.rootdir, value)

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
    if configured is not None:
        if "/" in configured or os.sep in configured:
            path = _resolve(rootdir, configured)
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
            state = "is not executable" if path.is_file() else "does not exist"
            raise NewmanSetupError(
                f"newman is not installed: newman = {configured!r} (gate {gate_name!r}) "
                f"{state} at {path}; {hint}"
            )
        found = shutil.which(configured)
        if found:
            return found
        raise NewmanSetupError(
            f"newman is not installed: newman = {configured!r} (gate {gate_name!r}) is not "
            f"on PATH; {hint}"
        )
    local = rootdir / LOCAL_BINARY
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("newman")
    if found:
        return found
    raise NewmanSetupError(
        f"newman is not installed: looked for {local} and for 'newman' on PATH; {hint}"
    )


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

        expanded[name] = _ENV_REFERENCE.sub(replace, value)
    return expanded


def stage_session(config: pytest.Config) -> StageSession:
    from pytest_release.stage_session import require_stage_session

    return require_stage_session(config)


# -- items ----------------------------------------------------------------------------------
class _NewmanItem(GateItem):
    def _report(self, verdict: Verdict) -> None:
        redact = stage_session(self.config).redact
        for key, value in verdict.properties:
            self.user_properties.append((key, value))
        if verdict.outcome == "skipped":
            pytest.skip(redact(verdict.message))
        if verdict.outcome == "failed":
            raise GateCheckFailed(redact(verdict.message))
        if verdict.message:
            self.add_report_section("call", "newman", redact(verdict.message))


class NewmanProblemItem(_NewmanItem):
    """A collection that cannot be used (missing, malformed): always fails with why."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        self._report(Verdict("failed", self.message))


class NewmanStatusItem(_NewmanItem):
    """Did newman run the collection to the end?  Fails for anything that is not a
    request's own result: newman missing, bad input files, timeout, run errors."""

    def __init__(self, *, runner: CollectionRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    def runtest(self) -> None:
        outcome = self.runner.outcome(self.config)
        self._report(
            status_verdict(
                outcome,
                expected_iterations=self.runner.iterations,
                expected=self.runner.expected_names,
            )
        )


class NewmanRequestItem(_NewmanItem):
    """One request of a collection in one iteration: its ``pm.test`` assertions."""

    def __init__(
        self,
        *,
        runner: CollectionRun,
        position: int,
        request_name: str,
        iteration: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.runner = runner
        self.position = position
        self.request_name = request_name
        self.iteration = iteration

    def runtest(self) -> None:
        outcome = self.runner.outcome(self.config)
        if outcome.problem is not None:
            first = outcome.problem.splitlines()[0]
            self._report(
                Verdict(
                    "failed",
                    f"newman did not run {self.runner.collection.path.name}: {first}\n"
                    f"(details in {self.runner.status_name})",
                )
            )
            return
        self._report(
            request_verdict(outcome, self.position, self.iteration, expected_name=self.request_name)
        )

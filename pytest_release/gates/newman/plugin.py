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
    secret_variables = ["*token*", "*password*", ...]   # names whose values are masked
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_release.gates.gate_hooks import gate_kind_hooks
from pytest_release.gates.newman.collection import (
    Collection,
    CollectionError,
    count_iteration_data,
    load_collection,
    read_json_file,
    secret_values,
)
from pytest_release.gates.newman.collection_run import CollectionRun, expand_known
from pytest_release.gates.newman.config import (
    KIND,
    STATUS_NAME,
    NewmanGateConfig,
    is_secret_variable,
)
from pytest_release.gates.newman.items import (
    NewmanProblemItem,
    NewmanRequestItem,
    NewmanStatusItem,
)
from pytest_release.gates.tool_command import resolve_path
from pytest_release.gating.gate_node import GateNode
from pytest_release.report.redact import MIN_SECRET_LENGTH
from pytest_release.stage.session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.ledger.stage_run import StageRun


# -- hooks ----------------------------------------------------------------------------------
def _items(gate_node: GateNode, gate: NewmanGateConfig) -> list[pytest.Item]:
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
        _mask_collection_secrets(gate_node, gate, collection)
        items += _collection_items(gate_node, gate, setup, key, collection)
    return items


pytest_release_gate_kinds, pytest_release_gate_items = gate_kind_hooks(
    KIND, NewmanGateConfig, _items
)


def _mask_collection_secrets(
    gate_node: GateNode, gate: NewmanGateConfig, collection: Collection
) -> None:
    """The values of the collection's own variables named like credentials are masked
    from now on (read at collection, on every process, before any item reports)."""
    values = [
        value
        for key, value in collection.variables
        if is_secret_variable(key, gate.secret_variables)
    ]
    stage_session = get_stage_session(gate_node.config)
    if values and stage_session is not None:
        stage_session.add_secrets(values)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Mask the values of the gates' Postman variables that are secrets (``"type":
    "secret"``, or a name matching ``secret_variables``) in the environment and globals
    files, env_vars and global_vars, on every process, before anything is reported (the
    collections' own variables are added when they are read)."""
    stage_session = get_stage_session(session.config)
    if stage_session is None:
        return
    run = stage_session.run
    found: list[tuple[str, str]] = []
    for name in run.plan.order:
        gate = run.config.gates[name]
        if isinstance(gate, NewmanGateConfig):

            def is_secret(variable: str, gate: NewmanGateConfig = gate) -> bool:
                return is_secret_variable(variable, gate.secret_variables)

            for value in (gate.environment, gate.globals):
                if value is not None:
                    found += secret_values(resolve_path(run.rootdir, value), is_secret)
            for variables in (gate.env_vars, gate.global_vars):
                found += [
                    (key, expand_known(value)) for key, value in variables.items() if is_secret(key)
                ]
    stage_session.add_secrets(value for _, value in found)
    short = sorted({key for key, value in found if 0 < len(value) < MIN_SECRET_LENGTH})
    if short and not stage_session.is_worker:
        stage_session.startup_warnings.append(
            f"newman: the value of Postman variable(s) {', '.join(map(repr, short))} is "
            f"shorter than {MIN_SECRET_LENGTH} characters: too short to mask safely (it "
            "would hide ordinary text), so it is NOT masked; use a longer secret"
        )


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
                path = resolve_path(run.rootdir, value)
                try:
                    read_json_file(path, what, run.relative(path))
                except CollectionError as exc:
                    problems.append(f"{exc.message} (gate key {key} = {value!r})")
        iterations = gate.iterations or 1
        if gate.iteration_data is not None:
            path = resolve_path(run.rootdir, gate.iteration_data)
            try:
                rows = count_iteration_data(path, run.relative(path))
            except CollectionError as exc:
                problems.append(f"{exc.message} (gate key iteration_data)")
            else:
                iterations = gate.iterations or rows
        return cls(iterations=iterations, problem="\n".join(problems) or None)


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

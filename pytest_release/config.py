"""The release configuration: ``[tool.pytest-release]`` validated once at start-up.

The raw TOML table is merged over :mod:`pytest_release.defaults` and validated with
pydantic.  Gate tables are validated with the model registered for their ``kind``
(see the ``pytest_release_gate_kinds`` hook), so gate plugins add their own keys
without editing this module, and unknown keys are still errors.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_release.config_checks import stage_problems
from pytest_release.config_types import Duration, PositiveDuration
from pytest_release.defaults import DEFAULT_GATES, DEFAULT_STAGES
from pytest_release.errors import ReleaseConfigError

STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CoverageConfig(_Strict):
    """A coverage threshold for a gate: coverage.py measures the code its tests run (on
    every process), and a check after the gate's last test compares the total."""

    fail_under: float = Field(
        ge=0, le=100, description="Minimum total coverage in percent; below it the gate fails."
    )
    source: tuple[str, ...] = Field(
        default=(),
        description="Packages or directories (relative to the rootdir) to measure; "
        "empty: everything coverage.py sees under the rootdir.",
    )
    branch: bool = Field(default=False, description="Measure branch coverage too.")


class GateConfig(_Strict):
    """Keys every gate table accepts; a gate kind subclasses this to add its own."""

    kind: str = Field(
        default="tests", description="Gate implementation; other kinds add their own keys."
    )
    description: str = Field(default="", description="Shown in reports.")
    markers: tuple[str, ...] = Field(
        default=(), description="Tests carrying any of these markers join the gate."
    )
    paths: tuple[str, ...] = Field(
        default=(),
        description="Glob patterns (relative to the rootdir) whose tests join the gate.",
    )
    serial: bool = Field(
        default=False,
        description="Run the gate's items in order in one process (also under xdist), "
        "for gates whose items are steps of one procedure.",
    )
    coverage: CoverageConfig | None = Field(
        default=None,
        description="Coverage threshold of the gate's tests (coverage.py), e.g. "
        "{ fail_under = 85, source = ['src/shop'] }.",
    )
    after: tuple[str, ...] | None = Field(
        default=None,
        description="Gates that must finish first. Unset: the previous gate in the stage. "
        "[]: none, the gate may run in parallel with others.",
    )


class RolloutConfig(_Strict):
    """The rollout step a stage performs (canary engine)."""

    action: Literal["canary", "promote", "rollback"] = Field(
        default="canary",
        description="canary: deploy beside stable and judge; promote: update the main "
        "deployment and clean up the canary; rollback: return to the previous version.",
    )
    replicas: int = Field(default=1, ge=0, description="Replicas of the new version.")
    weight: int = Field(
        default=10,
        ge=0,
        le=100,
        description="Percent of traffic to canary; for action 'canary' 1 to 99, and above the "
        "weight of the canary stage it requires.",
    )
    hold: Duration = Field(default=900.0, description="Seconds the canary is judged.")
    interval: Duration = Field(
        default=60.0,
        description="Seconds per judged interval; a hold has at most 10000 intervals.",
    )


class StageConfig(_Strict):
    """One pytest session of the pipeline."""

    description: str = Field(default="", description="Shown in reports.")
    gates: tuple[str, ...] = Field(default=(), description="Gates in run order.")
    requires: tuple[str, ...] = Field(
        default=(), description="Stages whose latest run must have passed for the release."
    )
    rollout: RolloutConfig | None = Field(
        default=None, description="The rollout step of a canary/promote/rollback stage."
    )
    environment: str | None = Field(
        default=None,
        description="GitHub environment the stage's job runs in (`python -m pytest_release "
        "workflow`); its protection rules (required reviewers) approve the stage, recorded in "
        "the ledger with --approved-via=<environment>.",
    )


class LedgerConfig(_Strict):
    """Where stage runs are recorded."""

    backend: Literal["file", "kubernetes"] = Field(
        default="file",
        description="Ledger storage backend: 'file' (path), or 'kubernetes' (a ConfigMap per "
        "application, a coordination.k8s.io Lease as the rollout lock) for CI jobs on "
        "different runners.",
    )
    path: str = Field(
        default=".pytest-release/ledger.json",
        description="Ledger file, relative to the rootdir (--ledger, ini release_ledger).",
    )
    lock_timeout: PositiveDuration = Field(
        default=60.0,
        description="file: seconds to wait for the ledger's write lock (held by another stage "
        "writing the ledger) before the stage stops with an error.",
    )
    namespace: str = Field(
        default="default", description="kubernetes: namespace of the ConfigMap and the Lease."
    )
    application: str | None = Field(
        default=None,
        description="kubernetes: the application; names the ConfigMap "
        "pytest-release-ledger-<application> and the Lease pytest-release-rollout-<application>. "
        "Unset: the rootdir's name.",
    )
    configmap: str | None = Field(default=None, description="kubernetes: ConfigMap name override.")
    lease: str | None = Field(default=None, description="kubernetes: Lease name override.")
    lease_duration: int = Field(
        default=60,
        ge=5,
        description="kubernetes: seconds a rollout lock lives without renewal (renewed every "
        "third of it while a stage runs; a crashed run's lock expires after it).",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="kubernetes: kubeconfig file (relative to the rootdir); unset: $KUBECONFIG, "
        "~/.kube/config, or the in-cluster service account.",
    )
    context: str | None = Field(default=None, description="kubernetes: kubeconfig context.")


class ReleaseConfigModel(_Strict):
    reports_dir: str = Field(
        default="reports",
        description="JUnit and stage reports (--reports-dir, ini release_reports_dir).",
    )
    secrets: tuple[str, ...] = Field(
        default=(), description="Environment variable names whose values are redacted."
    )
    ledger: LedgerConfig = Field(default=LedgerConfig(), description="See `ledger`.")
    stages: dict[str, StageConfig] = Field(
        default={}, description="Stages by name, merged over the built-in ones."
    )
    gates: dict[str, dict[str, Any]] = Field(
        default={}, description="Gates by name, merged over the built-in ones."
    )


@dataclass(frozen=True)
class ReleaseConfig:
    """The validated configuration: stages, gates (typed by kind) and global settings."""

    source: str
    reports_dir: str
    secrets: tuple[str, ...]
    ledger: LedgerConfig
    stages: Mapping[str, StageConfig]
    gates: Mapping[str, GateConfig]

    def stage(self, name: str) -> StageConfig:
        try:
            return self.stages[name]
        except KeyError:
            raise ReleaseConfigError(
                f"unknown stage {name!r}; stages in {self.source}: {', '.join(self.stages)}"
            ) from None


class _Gates(Mapping[str, GateConfig]):
    """Gates by name, each validated with the model of its kind.  A built-in gate the
    configuration leaves as it is (its default table, valid by construction) is validated
    when first read: a stage that does not use its kind never imports that kind."""

    def __init__(self, source: str, kinds: Mapping[str, type[GateConfig]]) -> None:
        self._source = source
        self._kinds = kinds
        self._tables: dict[str, Mapping[str, Any]] = {}
        self._models: dict[str, GateConfig] = {}

    def add(self, name: str, table: Mapping[str, Any], *, validate: bool) -> None:
        self._tables[name] = table
        if validate:
            self._models[name] = self._validate(name)

    def validated(self) -> list[str]:
        return list(self._models)

    def _validate(self, name: str) -> GateConfig:
        table = self._tables[name]
        try:
            return self._kinds[table.get("kind", "tests")].model_validate(table)
        except ValidationError as exc:
            raise ReleaseConfigError(_format_errors(self._source, f"gates.{name}", exc)) from None

    def __getitem__(self, name: str) -> GateConfig:
        if name not in self._models:
            if name not in self._tables:
                raise KeyError(name)
            self._models[name] = self._validate(name)
        return self._models[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


def _describe_location(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


_MEMBER = re.compile(r"^(?:[A-Z]\w*(?:Config|Model)|function-\w+\[.*\])$")


def _is_member(part: int | str) -> bool:
    """A union member in an error location (``KubernetesPlatformConfig``), not a key."""
    return isinstance(part, str) and bool(_MEMBER.match(part))


def _union_errors(errors: Sequence[Any]) -> list[Any]:
    """Of a union of tables told apart by ``type`` (platform, router), keep the errors of
    the members whose ``type`` matched; drop the ones that only say the type is another."""
    wrong_type: set[tuple[int | str, ...]] = set()
    members: set[tuple[int | str, ...]] = set()
    for err in errors:
        loc = tuple(err["loc"])
        for i, part in enumerate(loc):
            if _is_member(part):
                members.add(loc[: i + 1])
                if loc[i + 1 :] == ("type",):
                    wrong_type.add(loc[: i + 1])
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        member = next((loc[: i + 1] for i, part in enumerate(loc) if _is_member(part)), None)
        siblings = {m for m in members if member is not None and m[:-1] == member[:-1]}
        if member in wrong_type and siblings - wrong_type:
            continue
        kept.append({**err, "loc": tuple(part for part in loc if not _is_member(part))})
    return kept


def _format_errors(source: str, prefix: str, error: ValidationError) -> str:
    lines = [f"invalid release configuration in {source}:"]
    for err in _union_errors(error.errors()):
        key = ".".join(p for p in (prefix, _describe_location(err["loc"])) if p)
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (value {value!r}); check the spelling")
        elif err["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key} = {value!r}: {err['msg']}")
    return "\n".join(lines)


def _merge_tables(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """User tables replace defaults key by key, sub-tables too (a stage's ``gates`` list
    replaces the default list; keys it does not set keep their default, so a profile that
    sets only ``[stages.canary-2.rollout] hold`` keeps canary-2's weight and replicas)."""
    merged: dict[str, Any] = {name: dict(table) for name, table in defaults.items()}
    for name, table in user.items():
        if isinstance(table, Mapping) and isinstance(merged.get(name), dict):
            merged[name] = _deep_merge(merged[name], table)
        else:
            merged[name] = table
    return merged


def merge_layers(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Layered configuration files: tables merge recursively, a later file's value
    replaces an earlier one's (lists included); a table whose ``type`` a later file
    changes is replaced whole (e.g. a profile switching the platform)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _deep_merge(merged, layer)
    return merged


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in top.items():
        below = result.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            # A table that switches its ``type`` (a platform profile) replaces the table.
            switched = "type" in value and "type" in below and value["type"] != below["type"]
            result[key] = dict(value) if switched else _deep_merge(below, value)
        else:
            result[key] = value
    return result


def read_table(path: Path, *, pyproject: bool) -> dict[str, Any]:
    """The ``[tool.pytest-release]`` table of a pyproject.toml, or a whole release TOML."""
    if path.is_dir():
        raise ReleaseConfigError(
            f"release configuration {path} is a directory, not a file; pass the path of a "
            f"TOML file to --release-config, e.g. {path / 'release.toml'}"
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReleaseConfigError(
            f"release configuration file {path} does not exist; "
            "pass an existing TOML file to --release-config"
        ) from None
    except OSError as exc:
        raise ReleaseConfigError(
            f"cannot read the release configuration file {path}: {exc.strerror or exc}; "
            "fix its permissions or pass another TOML file to --release-config"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReleaseConfigError(
            f"release configuration file {path} is not UTF-8 text (byte "
            f"0x{raw[exc.start]:02x} at offset {exc.start}): it must be a TOML file saved as "
            "UTF-8; check that --release-config names the right file"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseConfigError(f"{path} is not valid TOML: {exc}") from None
    if not pyproject:
        # A dedicated file may hold the table at top level or under [tool.pytest-release].
        tool = data.get("tool", {})
        if isinstance(tool, dict) and "pytest-release" in tool and len(data) == 1:
            data = tool["pytest-release"]
        return data
    table = data.get("tool", {}).get("pytest-release", {})
    if not isinstance(table, dict):
        raise ReleaseConfigError(f"{path}: [tool.pytest-release] must be a table")
    return table


def load_release_config(
    table: Mapping[str, Any],
    source: str,
    gate_kinds: Mapping[str, type[GateConfig]],
) -> ReleaseConfig:
    """Validate ``table`` (merged over the built-in defaults); errors name ``source``."""
    raw = dict(table)
    raw["stages"] = _merge_tables(
        DEFAULT_STAGES, _as_table(raw.get("stages", {}), source, "stages")
    )
    raw["gates"] = _merge_tables(DEFAULT_GATES, _as_table(raw.get("gates", {}), source, "gates"))
    try:
        model = ReleaseConfigModel.model_validate(raw)
    except ValidationError as exc:
        raise ReleaseConfigError(_format_errors(source, "", exc)) from None

    gates = _Gates(source, gate_kinds)
    for name, gate_table in model.gates.items():
        kind = gate_table.get("kind", "tests")
        if not isinstance(kind, str) or kind not in gate_kinds:
            raise ReleaseConfigError(
                f"invalid release configuration in {source}:\n  gates.{name}.kind = {kind!r}: "
                f"unknown gate kind; allowed: {', '.join(sorted(gate_kinds))}"
            )
        gates.add(name, gate_table, validate=gate_table != DEFAULT_GATES.get(name))

    problems: list[str] = []
    for stage_name, stage in model.stages.items():
        if not STAGE_NAME.match(stage_name):
            problems.append(
                f"  stages.{stage_name}: invalid stage name; use lower-case letters, digits, "
                "'-', '_' or '.'"
            )
        if not stage.gates:
            problems.append(
                f"  stages.{stage_name}.gates = []: a stage needs at least one gate; list the "
                f'gates it runs, e.g. gates = ["unit"] (gates: {", ".join(gates)})'
            )
        for gate_name in stage.gates:
            if gate_name not in gates:
                problems.append(
                    f"  stages.{stage_name}.gates: unknown gate {gate_name!r}; "
                    f"gates: {', '.join(gates)}"
                )
        for required in stage.requires:
            if required not in model.stages:
                problems.append(
                    f"  stages.{stage_name}.requires: unknown stage {required!r}; "
                    f"stages: {', '.join(model.stages)}"
                )
    problems += stage_problems(model.stages)
    for gate_name in gates.validated():
        for dep in gates[gate_name].after or ():
            if dep not in gates:
                problems.append(
                    f"  gates.{gate_name}.after: unknown gate {dep!r}; gates: {', '.join(gates)}"
                )
    if problems:
        raise ReleaseConfigError(
            "\n".join([f"invalid release configuration in {source}:", *problems])
        )
    return ReleaseConfig(
        source=source,
        reports_dir=model.reports_dir,
        secrets=model.secrets,
        ledger=model.ledger,
        stages=dict(model.stages),
        gates=gates,
    )


def _as_table(value: object, source: str, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReleaseConfigError(
            f"invalid release configuration in {source}:\n  {key} = {value!r}: must be a table"
        )
    return value


def gate_location(config: ReleaseConfig, gate_name: str) -> tuple[Path | None, int | None]:
    """Where the gate's table is in the configuration file (for reports of items that
    have no source of their own): the file, and the line of ``[...gates.<name>]``, else of
    its first sub-table ``[...gates.<name>.<key>]`` (None when the gate only has built-in
    defaults there or the file cannot be read)."""
    path = Path(config.source)
    if not path.is_file():
        return None, None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return path, None
    name = re.escape(gate_name)
    table = re.compile(rf'^\s*\[\s*(?:tool\.pytest-release\.)?gates\.(?:{name}|"{name}")\s*\]')
    sub_table = re.compile(rf'^\s*\[\s*(?:tool\.pytest-release\.)?gates\.(?:{name}|"{name}")\.')
    first_sub: int | None = None
    for number, line in enumerate(lines, start=1):
        if table.match(line):
            return path, number
        if first_sub is None and sub_table.match(line):
            first_sub = number
    return path, first_sub

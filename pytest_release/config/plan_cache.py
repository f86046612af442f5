"""The validated configuration kept between stages: a stage validates only when something
validation depends on has changed since a stage last did.

Validating ``[tool.pytest-release]`` imports pydantic and builds the core models: about
110 ms of CPU and 10 MiB per process (docs/benchmarks.md, figure 1: the validation
floor), nearly all that a one-test stage costs over plain pytest, paid again by every
stage of an unchanged project.  After a stage validated, it writes what the spine reads to
``<rootdir>/.pytest-release/plans/<key>.json``: the stages, the ledger table, reports
directory and secrets, the gates' names and the common settings of the gates it read
(:mod:`.common_gate`), and each environment's description and variables.  The key is a
hash of everything validation depends on:

* the configuration as read (the merged tables of its files) and its source,
* pytest-release's own code: path, size and modification time of each of its modules,
* the installed distributions (``*.dist-info`` names on ``sys.path``: pydantic's version,
  a plug-in's platform) and the Python version.

A stage whose key has an entry runs from it without importing pydantic.  When something
reads a gate's table (a gate kind's plugin), or the common settings of a gate the entry
lacks (the first stage that runs that gate), the whole configuration is validated then,
as without an entry, and the entry grows.  An entry that cannot be read, parsed or is
of another format is a miss; a directory that cannot be written is no error (the next
stage validates again).  Gate kinds of other plug-ins (the ``pytest_release_gate_kinds``
hook) turn the cache off, since their code is not in the key; so does
``--release-plan-cache=off``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_release.config.common_gate import CommonGateSettings, common_settings
from pytest_release.config.lazy import BuiltByName, BuiltOnRead, Lazy
from pytest_release.config.plain_tables import LedgerConfig, StageConfig
from pytest_release.config.release_config import Environment, ReleaseConfig
from pytest_release.system.json_record import from_json_value

if TYPE_CHECKING:
    from pytest_release.config.tables import GateConfig

# pytest-release's own code, whose modules are part of the key.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Bumped when an entry's shape changes: an entry of another format is a miss.
CACHE_FORMAT = 1
CACHE_DIR = Path(".pytest-release") / "plans"
# Entries kept (the newest); a project switching between profiles keeps each one's.
KEEP_ENTRIES = 16


class PlanCache:
    """The entry of one configuration (``key``) in ``directory``."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = directory
        self.key = key
        # The entry as this process read or wrote it (None: a miss), to write only news.
        self._text: str | None = None
        # The validation behind the entry read: a configuration that never validated
        # knows nothing its entry lacks (only validating reads more), so it is not written.
        self._validated: Lazy[ReleaseConfig] | None = None

    @classmethod
    def for_table(cls, rootdir: Path, table: Mapping[str, Any], source: str) -> PlanCache:
        return cls(rootdir / CACHE_DIR, configuration_key(table, source))

    @property
    def path(self) -> Path:
        return self.directory / f"{self.key}.json"

    def read(self, validate: Callable[[], ReleaseConfig]) -> ReleaseConfig | None:
        """The configuration of the entry, or None (no usable entry).  ``validate``
        builds the validated configuration, called only when a gate's table is read."""
        try:
            text = self.path.read_text(encoding="utf-8")
            entry = json.loads(text)
        except (OSError, ValueError):
            return None
        if (
            not isinstance(entry, dict)
            or entry.get("format") != CACHE_FORMAT
            or entry.get("key") != self.key
        ):
            return None
        validated = Lazy(validate)
        try:
            config = _from_entry(entry, validated)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # not an entry this code wrote
        self._text, self._validated = text, validated
        return config

    def write(self, config: ReleaseConfig) -> None:
        """Keep ``config`` (validated, or read from the entry and read further) for the
        next stage, unless the entry already says all it knows."""
        if self._validated is not None and not self._validated.built:
            return  # read from the entry and nothing more: serializing it again is waste
        text = json.dumps(_entry(self.key, config), sort_keys=True)
        if text == self._text:
            return
        tmp = self.directory / f".{self.key}.{os.getpid()}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)  # readers see the old entry or this one, never half
        except OSError:
            with contextlib.suppress(OSError):  # the directory itself may be the problem
                tmp.unlink(missing_ok=True)
            return
        self._text = text
        self._prune()

    def _prune(self) -> None:
        try:
            entries = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-KEEP_ENTRIES]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # another stage pruned at the same time


def configuration_key(table: Mapping[str, Any], source: str) -> str:
    """A hash of everything the validation of ``table`` depends on (see the module)."""
    digest = hashlib.sha256()
    described = {"format": CACHE_FORMAT, "source": source, "table": table, "python": sys.version}
    # TOML dates and times have no JSON form: their repr is as exact.
    digest.update(json.dumps(described, sort_keys=True, default=repr).encode())
    for line in sorted(_code_files(PACKAGE_DIR)):
        digest.update(line.encode())
    for name in sorted(_distributions()):
        digest.update(name.encode())
    return digest.hexdigest()[:40]


def _code_files(directory: Path) -> Iterator[str]:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    yield from _code_files(Path(entry.path))
            elif entry.name.endswith(".py"):
                stat = entry.stat()
                yield f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n"


def _distributions() -> Iterator[str]:
    for directory in sys.path:
        try:
            with os.scandir(directory or ".") as entries:
                yield from (
                    f"{directory}\0{entry.name}\n"
                    for entry in entries
                    if entry.name.endswith((".dist-info", ".egg-info"))
                )
        except OSError:
            continue  # a zip file, or a path that does not exist


def _read_settings(settings: Mapping[str, CommonGateSettings]) -> dict[str, Any]:
    """The common settings read so far (all of them when nothing is lazy)."""
    names = settings.built() if isinstance(settings, BuiltOnRead) else list(settings)
    return {name: settings[name].to_json() for name in names}


def _entry(key: str, config: ReleaseConfig) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "key": key,
        "source": config.source,
        "reports_dir": config.reports_dir,
        "secrets": list(config.secrets),
        "ledger": dataclasses.asdict(config.ledger),
        "stages": {name: dataclasses.asdict(stage) for name, stage in config.stages.items()},
        "gate_names": list(config.gates),
        "common": _read_settings(config.common),
        "environments": {
            name: {
                "description": environment.description,
                "env": dict(environment.env),
                "common": _read_settings(environment.common),
            }
            for name, environment in config.environments.items()
        },
    }


def _settings(raw: Mapping[str, Any]) -> dict[str, CommonGateSettings]:
    return {name: CommonGateSettings.from_json(value) for name, value in raw.items()}


def _from_entry(entry: Mapping[str, Any], validated: Lazy[ReleaseConfig]) -> ReleaseConfig:
    names = tuple(entry["gate_names"])
    # A gate's table exists only validated: reading one validates the configuration.
    gates: BuiltByName[GateConfig] = BuiltByName(names, lambda name: validated.get().gates[name])
    environments: dict[str, Environment] = {}
    for env_name, env in entry["environments"].items():

        def env_gate(name: str, env_name: str = env_name) -> GateConfig:
            return validated.get().environments[env_name].gates[name]

        env_gates: BuiltByName[GateConfig] = BuiltByName(names, env_gate)
        environments[env_name] = Environment(
            name=env_name,
            description=env["description"],
            env=dict(env["env"]),
            gates=env_gates,
            common=common_settings(env_gates, _settings(env["common"])),
        )
    return ReleaseConfig(
        source=entry["source"],
        reports_dir=entry["reports_dir"],
        secrets=tuple(entry["secrets"]),
        ledger_table=Lazy.ready(from_json_value(LedgerConfig, entry["ledger"])),
        stages={name: from_json_value(StageConfig, s) for name, s in entry["stages"].items()},
        gates=gates,
        common=common_settings(gates, _settings(entry["common"])),
        environments=environments,
    )

"""Command-line and ini options, defined once and resolved in one place.

Precedence: command line, then ini (``[tool.pytest.ini_options]``/pytest.ini), then
the release configuration, then the built-in default.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

GROUP = "release"


@dataclass(frozen=True)
class Option:
    flag: str
    dest: str
    help: str
    ini: str | None = None
    metavar: str | None = None
    repeatable: bool = False
    # A shorter, generic name, registered only when no other plugin or conftest uses it
    # (a suite that tests containers may well define --image itself).
    alias: str | None = None
    # A switch (--release-status) takes no value: it is False unless given.
    switch: bool = False

    def add_to(self, group: pytest.OptionGroup, name: str = "", help: str = "") -> None:
        """Register the option in ``group`` as ``name`` (default: its flag), with ``help``
        (default: its own)."""
        if self.switch:
            group.addoption(
                name or self.flag,
                dest=self.dest,
                action="store_true",
                default=False,
                help=help or self.help,
            )
            return
        group.addoption(
            name or self.flag,
            dest=self.dest,
            default=None,
            metavar=self.metavar,
            help=help or self.help,
            action="append" if self.repeatable else "store",
        )


STAGE = Option(
    "--stage",
    "release_stage",
    "run the release stage NAME (see [tool.pytest-release])",
    metavar="NAME",
)
RELEASE_ID = Option(
    "--release-id",
    "release_id",
    "release identifier: one printable word of at most 128 characters, no whitespace "
    "(default: $GITHUB_SHA, else `git rev-parse HEAD`)",
    metavar="ID",
)
IMAGE = Option(
    "--release-image",
    "release_image",
    "container image reference being released",
    ini="release_image",
    metavar="REF",
    alias="--image",
)
RELEASE_CONFIG = Option(
    "--release-config",
    "release_config",
    "TOML file with the release configuration (default: [tool.pytest-release] in "
    "pyproject.toml); repeat to layer files, later ones override earlier ones key by key "
    "(e.g. a demo profile)",
    ini="release_config",
    metavar="PATH",
    repeatable=True,
)
REPORTS_DIR = Option(
    "--release-reports-dir",
    "release_reports_dir",
    "directory for JUnit XML and stage reports (default: reports/)",
    ini="release_reports_dir",
    metavar="DIR",
    alias="--reports-dir",
)
LEDGER = Option(
    "--release-ledger",
    "release_ledger",
    "ledger file (default: .pytest-release/ledger.json)",
    ini="release_ledger",
    metavar="PATH",
    alias="--ledger",
)
OVERRIDE_REQUIRES = Option(
    "--override-requires",
    "release_override_requires",
    "run the stage although the stages it requires have not passed; "
    "REASON is recorded in the ledger",
    metavar="REASON",
)
APPROVED_VIA = Option(
    "--approved-via",
    "release_approved_via",
    "the run was approved through NAME (e.g. a GitHub environment with reviewers); "
    "the approval, its actor and run are recorded in the ledger",
    metavar="NAME",
)
ONLY_GATES = Option(
    "--release-gate",
    "release_only_gates",
    "run only gate NAME of the stage (repeatable); a partial run never satisfies "
    "another stage's requires",
    metavar="NAME",
    repeatable=True,
    alias="--gate",
)
SHARD = Option(
    "--release-shard",
    "release_shard",
    "run only shard K of N of the selected tests (by a stable hash of each node id); "
    "a shard never satisfies another stage's requires: merge-shards records the stage",
    metavar="K/N",
)
ROLLBACK_TO = Option(
    "--rollback-to",
    "release_rollback_to",
    "the image the main deployment must run after a rollback stage (default: what the "
    "ledger says the release changed)",
    metavar="REF",
    alias="--to",
)
RELEASE_STATUS = Option(
    "--release-status",
    "release_status",
    "print the ledger for the release (--release-id) and exit",
    switch=True,
)
PLAN_CACHE = Option(
    "--release-plan-cache",
    "release_plan_cache",
    "on (default): a stage whose configuration, pytest-release and installed packages "
    "are unchanged since a stage validated them reads the validated plan from "
    ".pytest-release/plans/ instead of validating again; off: always validate",
    ini="release_plan_cache",
    metavar="on|off",
)
PLAN_CACHE_VALUES = ("on", "off")

# In the order of pytest's help.
OPTIONS = (
    STAGE,
    RELEASE_ID,
    IMAGE,
    RELEASE_CONFIG,
    REPORTS_DIR,
    LEDGER,
    OVERRIDE_REQUIRES,
    APPROVED_VIA,
    ROLLBACK_TO,
    SHARD,
    ONLY_GATES,
    PLAN_CACHE,
    RELEASE_STATUS,
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "pytest-release: run a release stage")
    for option in OPTIONS:
        option.add_to(group)
        if option.ini:
            parser.addini(option.ini, f"default for {option.flag}", default=None)


ALIASED = (IMAGE, REPORTS_DIR, LEDGER, ONLY_GATES, ROLLBACK_TO)


def taken_flags(parser: pytest.Parser) -> set[str]:
    """Every option string registered so far, by any plugin or conftest."""
    groups = [parser._anonymous, *parser._groups]
    return {name for group in groups for option in group.options for name in option.names()}


def add_aliases(parser: pytest.Parser) -> list[str]:
    """Register the short generic names (``--image``, ``--gate``, ...) where nobody else
    did; called once every plugin and initial conftest has added its options.  Returns the
    names left to their other owner (the ``--release-*`` names always work)."""
    group = parser.getgroup(GROUP)
    taken = taken_flags(parser)
    left = []
    for option in ALIASED:
        assert option.alias is not None
        if option.alias in taken:
            left.append(option.alias)
            continue
        option.add_to(group, option.alias, help=f"same as {option.flag}")
    return left


def cli_or_ini_list(config: pytest.Config, option: Option) -> list[str]:
    """A repeatable option: every value given on the command line, else the ini value."""
    values = config.getoption(option.dest)
    if values:
        return [str(v) for v in values]
    if option.ini:
        ini_value = config.getini(option.ini)
        if isinstance(ini_value, str) and ini_value:
            return [ini_value]
    return []


def cli_or_ini(config: pytest.Config, option: Option) -> str | None:
    value = config.getoption(option.dest)
    if value is None and option.ini:
        ini_value = config.getini(option.ini)
        value = ini_value if isinstance(ini_value, str) and ini_value else None
    return value if isinstance(value, str) else None


def plan_cache_enabled(config: pytest.Config) -> bool:
    value = cli_or_ini(config, PLAN_CACHE) or "on"
    if value not in PLAN_CACHE_VALUES:
        raise pytest.UsageError(
            f"{PLAN_CACHE.flag}={value!r}: unknown value; allowed: "
            f"{', '.join(PLAN_CACHE_VALUES)} (ini: {PLAN_CACHE.ini})"
        )
    return value == "on"


# Release ids name files, GitHub outputs and ledger entries: one printable word, bounded.
MAX_RELEASE_ID = 128


def check_release_id(value: str, origin: str = RELEASE_ID.flag) -> str:
    """``value`` if it is a usable release id, else a usage error naming ``origin`` (the
    option or variable it came from), the value and how to fix it."""
    fix = (
        "use one printable word without spaces, such as the commit sha or the image tag "
        f"(at most {MAX_RELEASE_ID} characters)"
    )
    if not value:
        raise pytest.UsageError(f"{origin} is empty; {fix}, e.g. --release-id=$GITHUB_SHA")
    shown = repr(value if len(value) <= 60 else value[:60] + "...")
    if len(value) > MAX_RELEASE_ID:
        raise pytest.UsageError(
            f"{origin} = {shown} has {len(value)} characters; at most {MAX_RELEASE_ID} are "
            f"allowed (the id names report files, GitHub outputs and ledger entries): {fix}"
        )
    if any(char.isspace() for char in value):
        raise pytest.UsageError(
            f"{origin} = {shown} contains whitespace (a space, tab or line break would "
            f"split GitHub outputs and file names): {fix}"
        )
    if not value.isprintable():
        raise pytest.UsageError(
            f"{origin} = {shown} contains a control character or another non-printable "
            f"character: {fix}"
        )
    return value


def resolve_release_id(explicit: str | None, rootdir: Path) -> str:
    if explicit is not None:
        return check_release_id(explicit)
    sha = os.environ.get("GITHUB_SHA", "").strip()
    if sha:
        return check_release_id(sha, "$GITHUB_SHA")
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=rootdir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is not None and result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    raise pytest.UsageError(
        "cannot determine the release id: --release-id was not given, $GITHUB_SHA is unset "
        f"and `git rev-parse HEAD` failed in {rootdir}; pass --release-id=ID "
        "(for example the image tag or commit sha)"
    )

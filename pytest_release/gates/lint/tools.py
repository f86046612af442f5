"""The lint tools the gate knows: how to call each one and how to read its output.

Every adapter asks its tool for machine-readable output where it has one (ruff and
bandit JSON, pip-audit JSON, mypy's one-line ``file:line:col: error: message  [code]``
format, flake8's default format, unified diffs from the formatters) and turns it into
:class:`~pytest_release.gates.lint.model.Finding` objects with repo-relative paths.  A parser
raises :class:`ParseError` when the output is not what the tool should print; the runner
then reports the tool as crashed instead of guessing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_release.errors import GateSetupError
from pytest_release.gates.lint.model import Finding, Outcome, Severity

LINT_EXTRA_HINT = "pip install 'pytest-release[lint]'"


class ParseError(GateSetupError):
    """The tool's output is not in the format the adapter asked for."""


@dataclass(frozen=True)
class ToolOutput:
    stdout: str
    stderr: str
    exit_code: int
    root: Path


Parser = Callable[[ToolOutput], list[Finding]]


@dataclass(frozen=True)
class ToolSpec:
    """How to run one tool.

    The command line is ``<command> <fixed_args> <user args> <targets>``; ``command``
    defaults to ``executable`` found next to the running interpreter or on ``PATH``.
    """

    name: str
    executable: str
    fixed_args: tuple[str, ...]
    package: str
    parse: Parser
    # Exit codes that mean "ran and reported findings" (0 always means clean).
    finding_codes: frozenset[int] = frozenset({1})
    uses_targets: bool = True
    # Results of a tool that depends on more than the checked files (pip-audit asks an
    # advisory database) are never cached.
    cacheable: bool = True
    fix_hint: str = ""
    env_prefixes: tuple[str, ...] = ()

    @property
    def install_hint(self) -> str:
        if self.package in ("ruff", "mypy"):
            return f"pip install {self.package}  (or {LINT_EXTRA_HINT})"
        return f"pip install {self.package}"


# -- path helpers -------------------------------------------------------------------------


def repo_path(raw: str, root: Path) -> str:
    """``raw`` (absolute, or relative to ``root``) as a repo-relative posix path."""
    raw = raw.strip()
    path = Path(raw)
    if not path.is_absolute():
        path = root / path
    normalized = Path(os.path.normpath(path))
    for base in (root, root.resolve()):
        try:
            return normalized.relative_to(base).as_posix()
        except ValueError:
            continue
    try:
        return normalized.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return normalized.as_posix()


def _load_json(text: str, tool: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{tool} did not print JSON on stdout ({exc})") from None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- ruff ---------------------------------------------------------------------------------


def _ruff_json(output: ToolOutput, tool: str) -> list[Finding]:
    data = _load_json(output.stdout, tool)
    if not isinstance(data, list):
        raise ParseError(f"{tool}: expected a JSON list of diagnostics, got {type(data).__name__}")
    findings = []
    for entry in data:
        if not isinstance(entry, dict) or "filename" not in entry:
            raise ParseError(f"{tool}: unexpected diagnostic {entry!r}")
        location = entry.get("location") or {}
        code = entry.get("code") or entry.get("name") or "syntax-error"
        findings.append(
            Finding(
                path=repo_path(str(entry["filename"]), output.root),
                line=_int_or_none(location.get("row")),
                col=_int_or_none(location.get("column")),
                code=str(code),
                message=str(entry.get("message", "")),
            )
        )
    return findings


def parse_ruff_check(output: ToolOutput) -> list[Finding]:
    return _ruff_json(output, "ruff check")


_WOULD_REFORMAT = re.compile(r"^Would reformat: (?P<path>.+)$")


def parse_ruff_format(output: ToolOutput) -> list[Finding]:
    if output.stdout.lstrip().startswith("["):
        return _ruff_json(output, "ruff format")
    # Ruff versions without JSON output for `format --check` print one line per file.
    findings = []
    for line in output.stdout.splitlines():
        if match := _WOULD_REFORMAT.match(line.strip()):
            path = repo_path(match["path"], output.root)
            findings.append(Finding(path, 1, 1, "unformatted", "File would be reformatted"))
    if not findings and output.stdout.strip() and output.exit_code != 0:
        raise ParseError("ruff format printed neither JSON nor 'Would reformat:' lines")
    return findings


# -- mypy ---------------------------------------------------------------------------------

_MYPY_LINE = re.compile(
    r"^(?P<path>[^:\n]+?):(?:(?P<line>\d+):(?:(?P<col>\d+):)?)? "
    r"(?P<severity>error|warning|note): (?P<message>.*?)(?:  \[(?P<code>[a-z0-9_-]+)\])?$"
)


def parse_mypy(output: ToolOutput) -> list[Finding]:
    findings = []
    for line in output.stdout.splitlines():
        match = _MYPY_LINE.match(line)
        if match is None:
            continue
        severity: Severity = match["severity"]  # type: ignore[assignment]
        findings.append(
            Finding(
                path=repo_path(match["path"], output.root),
                line=int(match["line"]) if match["line"] else None,
                col=int(match["col"]) if match["col"] else None,
                code=match["code"] or "",
                message=match["message"],
                severity=severity,
            )
        )
    return findings


# -- flake8 -------------------------------------------------------------------------------

_FLAKE8_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+[0-9]+) (?P<message>.*)$"
)


def parse_flake8(output: ToolOutput) -> list[Finding]:
    findings = []
    for line in output.stdout.splitlines():
        if match := _FLAKE8_LINE.match(line):
            findings.append(
                Finding(
                    path=repo_path(match["path"], output.root),
                    line=int(match["line"]),
                    col=int(match["col"]),
                    code=match["code"],
                    message=match["message"],
                )
            )
    return findings


# -- bandit -------------------------------------------------------------------------------


def parse_bandit(output: ToolOutput) -> list[Finding]:
    data = _load_json(output.stdout, "bandit")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ParseError("bandit: expected a JSON object with a 'results' list")
    findings = []
    for entry in data["results"]:
        col = _int_or_none(entry.get("col_offset"))
        severity = entry.get("issue_severity", "?")
        confidence = entry.get("issue_confidence", "?")
        findings.append(
            Finding(
                path=repo_path(str(entry.get("filename", "")), output.root),
                line=_int_or_none(entry.get("line_number")),
                col=None if col is None else col + 1,
                code=str(entry.get("test_id", "")),
                message=f"{entry.get('issue_text', '')} "
                f"(severity {severity}, confidence {confidence})",
            )
        )
    for error in data.get("errors") or ():
        findings.append(
            Finding(
                path=repo_path(str(error.get("filename", "")), output.root),
                line=None,
                col=None,
                code="bandit-error",
                message=str(error.get("reason", "bandit could not scan the file")),
            )
        )
    return findings


# -- formatters with unified diffs (black, isort) -------------------------------------------

_HUNK = re.compile(r"^@@ -(?P<old>\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


def _diff_header_path(header: str) -> str:
    path = header.split("\t", 1)[0].strip()
    for suffix in (":before", ":after"):
        path = path.removesuffix(suffix)
    return path


def first_changed_lines(diff: str, root: Path) -> dict[str, int]:
    """Repo-relative path -> first line (1-based, in the original file) a diff changes."""
    result: dict[str, int] = {}
    current: str | None = None
    old_line = 0
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("--- "):
            current = repo_path(_diff_header_path(line[4:]), root)
            in_hunk = False
        elif line.startswith("+++ "):
            continue
        elif match := _HUNK.match(line):
            old_line = int(match["old"])
            in_hunk = True
        elif in_hunk and current is not None and current not in result:
            if line.startswith(("-", "+")):
                result[current] = max(old_line, 1)
            else:
                old_line += 1
    return result


def _reformat(raw: str, first: dict[str, int], root: Path, code: str, message: str) -> Finding:
    """A file a formatter would change, at the first line its diff changes."""
    path = repo_path(raw, root)
    return Finding(path, first.get(path, 1), 1, code, message)


_BLACK_WOULD = re.compile(r"^would reformat (?P<path>.+)$")
_BLACK_CANNOT = re.compile(
    r"^error: cannot (?:parse: (?P<path1>.+?):(?P<line1>\d+):(?P<col1>\d+)"
    r"|format (?P<path2>.+?): (?P<message>.*?))\s*$"
)
_BLACK_CANNOT_POS = re.compile(r"Cannot parse[^:]*: (?P<line>\d+):(?P<col>\d+)")


def parse_black(output: ToolOutput) -> list[Finding]:
    first = first_changed_lines(output.stdout, output.root)
    findings = []
    for line in output.stderr.splitlines():
        if match := _BLACK_WOULD.match(line.strip()):
            findings.append(
                _reformat(match["path"], first, output.root, "black", "file would be reformatted")
            )
        elif match := _BLACK_CANNOT.match(line.strip()):
            if match["path1"]:
                findings.append(
                    Finding(
                        repo_path(match["path1"], output.root),
                        int(match["line1"]),
                        int(match["col1"]),
                        "black-error",
                        "cannot parse the file",
                    )
                )
            else:
                pos = _BLACK_CANNOT_POS.search(match["message"])
                findings.append(
                    Finding(
                        repo_path(match["path2"], output.root),
                        int(pos["line"]) if pos else None,
                        int(pos["col"]) if pos else None,
                        "black-error",
                        match["message"],
                    )
                )
    return findings


_ISORT_ERROR = re.compile(r"^ERROR: (?P<path>.+?) (?P<message>Imports are incorrectly .*)$")


def parse_isort(output: ToolOutput) -> list[Finding]:
    first = first_changed_lines(output.stdout, output.root)
    return [
        _reformat(match["path"], first, output.root, "isort", match["message"].rstrip("."))
        for line in output.stderr.splitlines()
        if (match := _ISORT_ERROR.match(line.strip()))
    ]


# -- pip-audit ----------------------------------------------------------------------------


def parse_pip_audit(output: ToolOutput) -> list[Finding]:
    data = _load_json(output.stdout, "pip-audit")
    # Current versions: {"dependencies": [...], "fixes": [...]}; old ones: a bare list.
    dependencies = data.get("dependencies") if isinstance(data, dict) else data
    if not isinstance(dependencies, list):
        raise ParseError("pip-audit: expected a 'dependencies' list in its JSON output")
    findings = []
    for dep in dependencies:
        name, version = dep.get("name", "?"), dep.get("version", "?")
        for vuln in dep.get("vulns") or ():
            fixes = ", ".join(vuln.get("fix_versions") or ()) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or ())
            also = f" (also {aliases})" if aliases else ""
            description = " ".join(str(vuln.get("description") or "").split())
            if len(description) > 200:
                description = description[:197] + "..."
            findings.append(
                Finding(
                    path="",
                    line=None,
                    col=None,
                    code=str(vuln.get("id", "?")),
                    message=f"{name} {version} is vulnerable{also}; fixed in: {fixes}. "
                    f"{description}".strip(),
                    subject=f"{name}=={version}",
                )
            )
    return findings


# -- the registry -------------------------------------------------------------------------


def _tool(name: str, program: str, args: str, parse: Parser, env_prefix: str) -> ToolSpec:
    """A tool with :class:`ToolSpec`'s defaults whose pip package has its program's name."""
    return ToolSpec(
        name=name,
        executable=program,
        fixed_args=tuple(args.split()),
        package=program,
        parse=parse,
        env_prefixes=(env_prefix,),
    )


# One row a tool: its name, its program, the fixed arguments that ask for machine-readable
# output, its parser and the prefix of the environment variables that configure it; the
# tools that differ from the defaults say how with ``replace``.
TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        _tool(
            "ruff-check", "ruff", "check --output-format=json --no-fix", parse_ruff_check, "RUFF_"
        ),
        replace(
            _tool(
                "ruff-format",
                "ruff",
                "format --check --output-format=json",
                parse_ruff_format,
                "RUFF_",
            ),
            # 2: a file could not be parsed (reported as a finding) or a usage error.
            finding_codes=frozenset({1, 2}),
            fix_hint="ruff format {path}",
        ),
        replace(
            _tool(
                "mypy",
                "mypy",
                "--show-column-numbers --show-error-codes --no-error-summary"
                " --no-pretty --no-color-output",
                parse_mypy,
                "MYPY",
            ),
            # 2: blocking errors (syntax errors) or a usage error / crash.
            finding_codes=frozenset({1, 2}),
        ),
        replace(
            _tool("black", "black", "--check --diff --no-color", parse_black, "BLACK_"),
            # 123: a file could not be parsed (reported as a finding) or an internal error.
            finding_codes=frozenset({1, 123}),
            fix_hint="black {path}",
        ),
        replace(
            _tool("isort", "isort", "--check-only --diff", parse_isort, "ISORT_"),
            fix_hint="isort {path}",
        ),
        _tool("flake8", "flake8", "--format=default", parse_flake8, "FLAKE8"),
        _tool("bandit", "bandit", "-f json -q -r", parse_bandit, "BANDIT"),
        replace(
            _tool(
                "pip-audit",
                "pip-audit",
                "-f json --progress-spinner=off",
                parse_pip_audit,
                "PIP_AUDIT",
            ),
            uses_targets=False,
            cacheable=False,
        ),
    )
}

DEFAULT_TOOLS: tuple[str, ...] = ("ruff-check", "ruff-format", "mypy")


def known_tools() -> Iterable[str]:
    return TOOLS.keys()


@dataclass(frozen=True)
class ToolPlan:
    """The resolved command line of one tool, or why it cannot run."""

    spec: ToolSpec
    prefix: tuple[str, ...]  # the program (resolved) and, for overrides, its own args
    argv: tuple[str, ...]
    targets: tuple[str, ...]
    extra_files: tuple[str, ...]
    problem: str = ""  # non-empty: the tool cannot run (missing program or target)
    problem_outcome: Outcome = "error"

"""What a lint tool reported: findings and the outcome of one tool run (JSON-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pytest_release.system.json_record import JsonRecord

Outcome = Literal["ok", "missing", "crashed", "timeout", "error"]
Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Finding:
    """One problem a tool reported.

    ``path`` is repo-relative (posix) when the finding is about a file, else empty and
    ``subject`` names what it is about (``pip-audit``: ``name==version``).
    """

    path: str
    line: int | None
    col: int | None
    code: str
    message: str
    severity: Severity = "error"
    subject: str = ""

    @property
    def group(self) -> str:
        """What the finding's item is named after: its file, else its subject."""
        return self.path or self.subject

    @property
    def fails(self) -> bool:
        return self.severity != "note"

    def format(self) -> str:
        """``path:line:col code message`` (the parts that are known)."""
        where = self.path or self.subject
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        code = f" {self.code}" if self.code else ""
        note = " note:" if self.severity == "note" else ""
        return f"{where}{code}{note} {self.message}"


@dataclass(frozen=True)
class ToolResult(JsonRecord):
    """The outcome of running one tool (or of finding that it cannot run).

    ``outcome`` is ``ok`` when the tool ran and reported in the expected way (findings
    or not); anything else means the tool itself did not work and ``message`` says why
    and how to fix it.
    """

    tool: str
    outcome: Outcome
    message: str = ""
    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    version: str = ""
    findings: tuple[Finding, ...] = ()
    duration: float = 0.0
    cached: bool = False
    cache_key: str = ""
    stderr_tail: str = ""
    stdout_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

"""JUnit test cases written out as they finish, so what a test leaves behind in the
process is bounded: a suite of 60,000 tests keeps four counters per gate and its failing
cases (the GitHub annotations and step summary list those), not a record per test.

Each finished case is turned into its ``<testcase>`` element at once
(the work the end of the stage would have done) and appended, one line per case, to a
file of its gate in the stage's run directory; :func:`pytest_release.report.junit.write_junit`
copies those lines into the report.  Node ids were masked at collection; a secret that
became known later (a gate plugin's ``add_secrets``) is masked in the spooled lines when
they are copied, in the escaped forms the XML gives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pytest_release.report.redact import Redactor


@dataclass(slots=True)
class CaseCounts:
    """The ``<testsuite>`` counters of one gate's spooled cases."""

    tests: int = 0
    failure: int = 0
    error: int = 0
    skipped: int = 0

    def add(self, outcome: str) -> None:
        self.tests += 1
        if outcome == "failure":
            self.failure += 1
        elif outcome == "error":
            self.error += 1
        elif outcome == "skipped":
            self.skipped += 1


class CaseSpool:
    """One append-only file of ``<testcase>`` lines per gate, and their counts."""

    def __init__(self, directory: Path, redact: Redactor) -> None:
        self.directory = directory
        # The secrets known when the node ids were masked: the spooled lines need a
        # second look only when more became known since.
        self.masked_with = redact.values
        self.counts: dict[str, CaseCounts] = {}
        self._files: dict[str, IO[str]] = {}
        self._paths: dict[str, Path] = {}

    def add(self, gate: str, outcome: str, xml_line: str) -> None:
        """Append one finished case's element (a single line: its text is escaped)."""
        handle = self._files.get(gate)
        if handle is None:
            # Files are named by number: gate names are the user's keys.
            path = self.directory / f"junit-cases-{len(self._paths)}.part"
            self._paths[gate] = path
            handle = self._files[gate] = path.open("w", encoding="utf-8")
            self.counts[gate] = CaseCounts()
        # One line a case: a line break in text content is the same as its reference.
        handle.write(xml_line.replace("\n", "&#10;") + "\n")
        self.counts[gate].add(outcome)

    def late_secrets(self, redact: Redactor) -> bool:
        """Whether ``redact`` knows secrets the node ids were not masked with."""
        return bool(redact.values) and redact.values != self.masked_with

    def lines(self, gate: str) -> Iterator[str]:
        """The spooled elements of ``gate``, in the order the cases finished."""
        path = self._paths.get(gate)
        if path is None:
            return
        self._files[gate].flush()
        with path.open(encoding="utf-8") as spooled:
            for line in spooled:
                yield line.rstrip("\n")

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

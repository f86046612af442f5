"""Run Locust headless once and condense its CSV statistics into results per endpoint.

Locust's exit code is 1 whenever any request failed, so it says nothing about whether
the run itself worked.  The measurements are read from ``--json-file <prefix>.json``,
which Locust writes once at shutdown from its final statistics (its CSV files are
rewritten only every second, so they can miss the last second of the run); the
percentiles are computed from the response-time histogram in it the way Locust computes
them.  Failure messages come from ``<prefix>_failures.csv``, exceptions raised by tasks
from ``<prefix>_exceptions.csv`` and Locust's log.  A missing JSON file means Locust did
not run the load to the end (bad locustfile, crash).  The condensed
:class:`PerfOutcome` is JSON-serialisable so one process runs Locust and every xdist
worker reads the result (:meth:`pytest_release.stage.run_dir.RunDir.run_once`).
"""

from __future__ import annotations

import csv
import json
import math
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_release.gates.tool_run import ToolFailure, output_tail, run_gate_tool
from pytest_release.system.json_record import JsonRecord

_REFUSED = ("ConnectionRefusedError", "Connection refused")


@dataclass(frozen=True)
class LocustCommand:
    """What to run; :meth:`argv` is the Locust command line."""

    binary: str
    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    duration: float
    csv_prefix: Path
    html: Path
    timeout: float
    args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        return [
            self.binary,
            "-f",
            str(self.locustfile),
            "--headless",
            "-u",
            str(self.users),
            "-r",
            f"{self.spawn_rate:g}",
            "-t",
            f"{max(1, math.ceil(self.duration))}s",
            "--host",
            self.host,
            "--csv",
            str(self.csv_prefix),
            "--html",
            str(self.html),
            "--json-file",
            str(self.csv_prefix),
            "--only-summary",
            *self.args,
        ]


@dataclass(frozen=True)
class EndpointStats:
    """One row of Locust's statistics: latencies in ms (Locust's approximations)."""

    method: str
    name: str
    requests: int
    failures: int
    p50: float | None
    p95: float | None
    p99: float | None
    errors: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class PerfOutcome(JsonRecord):
    """What happened when Locust ran.  ``problem`` is set when the run cannot be trusted
    (Locust missing or crashed, target refused, no request made): nothing else counts."""

    problem: str | None = None
    exit_code: int | None = None
    stderr: str = ""
    duration: float = 0.0
    endpoints: tuple[EndpointStats, ...] = ()
    exceptions: tuple[str, ...] = ()

    @property
    def total_requests(self) -> int:
        return sum(e.requests for e in self.endpoints)

    def find(self, key: str) -> EndpointStats | None:
        return next((e for e in self.endpoints if e.key == key), None)


def failed(problem: str, **kwargs: Any) -> PerfOutcome:
    return PerfOutcome(problem=problem, **kwargs)


def refused(host: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at ``host`` (a base URL), or None when a TCP connection works."""
    parts = urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = (parts.hostname or "", port)
    try:
        with socket.create_connection(address, timeout=timeout):
            return None
    except OSError as exc:
        return f"{exc.strerror or exc} at {address[0]}:{address[1]}"


def run_locust(command: LocustCommand, cwd: Path) -> PerfOutcome:
    """Run Locust (killed after ``duration + timeout``) and read its statistics."""
    for suffix in (".json", "_stats.csv", "_failures.csv", "_exceptions.csv", "_stats_history.csv"):
        Path(f"{command.csv_prefix}{suffix}").unlink(missing_ok=True)
    command.html.unlink(missing_ok=True)
    command.csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    deadline = command.duration + command.timeout
    tool = run_gate_tool(
        command.argv(),
        cwd,
        deadline,
        f"Locust {command.binary}",
        killed=f"Locust did not finish within duration + timeout = {deadline:g}s and was killed",
    )
    if isinstance(tool, ToolFailure):
        return failed(tool.problem, stderr=tool.output)
    stdout, stderr, duration = tool.stdout, tool.stderr, tool.duration
    tail = output_tail(stderr or stdout)
    stats_file = Path(f"{command.csv_prefix}.json")
    if not stats_file.is_file():
        return failed(
            f"Locust exited with code {tool.returncode} without writing its statistics "
            f"({stats_file.name}): it did not run the load (a broken locustfile or a crash); "
            f"its output ends:\n{tail}",
            exit_code=tool.returncode,
            stderr=tail,
            duration=duration,
        )
    try:
        endpoints = read_stats(stats_file, Path(f"{command.csv_prefix}_failures.csv"))
        exceptions = read_exceptions(Path(f"{command.csv_prefix}_exceptions.csv"), stderr)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return failed(
            f"cannot read Locust's statistics {stats_file}: {exc}",
            exit_code=tool.returncode,
            stderr=tail,
            duration=duration,
        )
    outcome = PerfOutcome(
        exit_code=tool.returncode,
        stderr=tail,
        duration=duration,
        endpoints=endpoints,
        exceptions=exceptions,
    )
    return _judge_run(outcome, command)


def _judge_run(outcome: PerfOutcome, command: LocustCommand) -> PerfOutcome:
    """Problems of the run as a whole: a crash, no requests, every request refused."""
    problem: str | None = None
    if outcome.exit_code not in (0, 1):
        problem = f"Locust crashed (exit code {outcome.exit_code}); its output ends:\n"
        problem += outcome.stderr
    elif outcome.exceptions:
        problem = (
            f"the locustfile raised {len(outcome.exceptions)} kind(s) of exception during "
            "the run (a broken task; its measurements cannot be trusted):\n"
            + "\n".join(outcome.exceptions)
        )
    elif outcome.total_requests == 0:
        problem = (
            f"Locust made no request in {command.duration:g}s: the locustfile defines no "
            "task that requests anything (or its users failed to start); output ends:\n"
            + outcome.stderr
        )
    elif all(
        e.failures == e.requests and any(_is_refused(m) for m, _ in e.errors)
        for e in outcome.endpoints
    ):
        problem = (
            f"the target {command.host} refused every connection during the run "
            "(the service went down or is not listening)"
        )
    if problem is None:
        return outcome
    return PerfOutcome(**{**outcome.__dict__, "problem": problem})


def _is_refused(message: str) -> bool:
    return any(marker in message for marker in _REFUSED)


def read_stats(stats_file: Path, failures_file: Path) -> tuple[EndpointStats, ...]:
    """Endpoints from Locust's ``--json-file`` (its final statistics) and their failure
    messages from ``<prefix>_failures.csv``."""
    errors: dict[tuple[str, str], list[tuple[str, int]]] = {}
    if failures_file.is_file():
        with failures_file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = (row["Method"], row["Name"])
                errors.setdefault(key, []).append((row["Error"], int(row["Occurrences"])))
    entries = json.loads(stats_file.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"expected a JSON list of statistics entries, got {type(entries)}")
    found: list[EndpointStats] = []
    for entry in entries:
        method, name = str(entry["method"]), str(entry["name"])
        histogram = {int(float(ms)): int(count) for ms, count in entry["response_times"].items()}
        found.append(
            EndpointStats(
                method=method,
                name=name,
                requests=int(entry["num_requests"]),
                failures=int(entry["num_failures"]),
                p50=percentile(histogram, 0.50),
                p95=percentile(histogram, 0.95),
                p99=percentile(histogram, 0.99),
                errors=tuple(sorted(errors.get((method, name), ()), key=lambda e: -e[1])),
            )
        )
    return tuple(found)


def percentile(histogram: Mapping[int, int], share: float) -> float | None:
    """Locust's ``calculate_response_time_percentile`` over its histogram of rounded
    response times (ms -> count): the smallest time with at most ``1 - share`` of the
    requests slower.  None without any timed request."""
    total = sum(histogram.values())
    if total == 0:
        return None
    allowed_slower = total - int(total * share)
    slower = 0
    for response_time in sorted(histogram, reverse=True):
        slower += histogram[response_time]
        if slower >= allowed_slower:
            return float(response_time)
    return float(min(histogram))


_TASK_ERROR = re.compile(r"/ERROR/locust\.user\.(?:task|users?): (.*)")


def read_exceptions(path: Path, log: str) -> tuple[str, ...]:
    """Exceptions raised by tasks: Locust's exceptions CSV, else its log lines (the CSV
    is rewritten every second and can miss the last exceptions of a run)."""
    found: list[str] = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            found = [f"{row['Count']}x {row['Message']}" for row in csv.DictReader(handle)]
    if not found:
        counts: dict[str, int] = {}
        for match in _TASK_ERROR.finditer(log):
            counts[match.group(1).strip()] = counts.get(match.group(1).strip(), 0) + 1
        found = [f"{count}x {message}" for message, count in counts.items()]
    return tuple(found)


def _ms(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None  # "N/A": no request
    return number if math.isfinite(number) else None

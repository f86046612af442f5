"""GitHub Actions: error annotations, the step summary and step outputs.

Used only when ``GITHUB_ACTIONS=true``, and only by the controller under xdist.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_release.junit import CaseRecord
from pytest_release.redact import Redactor
from pytest_release.stage import StageOutcome, StageRun

_STATUS_ICON = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "closed": "⛔", "empty": "⚪"}


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def run_context(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Who and what ran this stage in GitHub Actions (for the ledger); empty elsewhere."""
    env = os.environ if environ is None else environ
    if not in_github_actions(env):
        return {}
    context = {
        "actor": env.get("GITHUB_ACTOR", ""),
        "triggering_actor": env.get("GITHUB_TRIGGERING_ACTOR", ""),
        "workflow": env.get("GITHUB_WORKFLOW", ""),
        "job": env.get("GITHUB_JOB", ""),
        "run_id": env.get("GITHUB_RUN_ID", ""),
        "run_attempt": env.get("GITHUB_RUN_ATTEMPT", ""),
        "ref": env.get("GITHUB_REF", ""),
        "event": env.get("GITHUB_EVENT_NAME", ""),
    }
    server, repository = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
    if server and repository and context["run_id"]:
        context["run_url"] = f"{server}/{repository}/actions/runs/{context['run_id']}"
    return {key: value for key, value in context.items() if value}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotations(cases: Iterable[CaseRecord], stage: str, redact: Redactor) -> list[str]:
    """``::error`` workflow commands, one per failed or errored item."""
    lines = []
    for case in cases:
        if case.outcome not in ("failure", "error"):
            continue
        props = [f"file={escape_property(case.file)}"]
        line = case.crash_line or case.line
        if line is not None:
            props.append(f"line={line}")
        title = redact(f"{stage}/{case.gate}: {case.name}")
        props.append(f"title={escape_property(title)}")
        message = redact(case.text or case.message)
        lines.append(f"::error {','.join(props)}::{escape_data(message)}")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


def step_summary(run: StageRun, outcome: StageOutcome, redact: Redactor) -> str:
    icon = "✅" if outcome.passed else "❌"
    lines = [f"### {icon} pytest-release stage `{run.stage}`: {outcome.result}", ""]
    facts = [f"release `{run.release_id}`"]
    if run.image:
        facts.append(f"image `{run.image}`")
    facts.append(f"JUnit `{run.relative(run.junit_path)}`")
    lines += [" · ".join(facts), ""]
    if outcome.message:
        lines += [f"> {outcome.message}", ""]
    lines += [
        "| gate | status | passed | failed | skipped | closed | duration |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for g in outcome.gates:
        status = f"{_STATUS_ICON.get(g.status, '')} {g.status}"
        if g.reason:
            status += f" ({g.reason})"
        skipped = f"{g.skipped} (+{g.xfailed} xfailed)" if g.xfailed else str(g.skipped)
        duration = "—" if g.status == "closed" else _duration(g.duration)  # never ran
        lines.append(
            f"| {g.gate} | {status} | {g.passed} | {g.failed} | {skipped} | "
            f"{g.closed} | {duration} |"
        )
    return redact("\n".join(lines) + "\n")


def write_step_summary(text: str, environ: Mapping[str, str] | None = None) -> None:
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def write_outputs(values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` in GitHub's multiline syntax
    (``name<<DELIM`` ... ``DELIM``), with a random delimiter that occurs in no value: a
    value holding a newline (a hostile release id) cannot add or override an output."""
    target = (os.environ if environ is None else environ).get("GITHUB_OUTPUT")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(format_outputs(values))


def format_outputs(values: Mapping[str, str]) -> str:
    lines = []
    for key, value in values.items():
        if not _OUTPUT_NAME.fullmatch(key):
            raise ValueError(f"invalid GitHub output name {key!r}")
        delimiter = _delimiter(value)
        lines += [f"{key}<<{delimiter}", value, delimiter]
    return "".join(f"{line}\n" for line in lines)


_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _delimiter(value: str) -> str:
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value:
            return delimiter

"""GitHub Actions: error annotations, the step summary and step outputs.

Used only when ``GITHUB_ACTIONS=true``, and only by the controller under xdist.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_release.ledger.stage_run import StageOutcome, StageRun, shown_result
from pytest_release.report.junit import CaseRecord
from pytest_release.report.redact import Redactor

_STATUS_ICON = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "closed": "⛔", "empty": "⚪"}
# The stage action names the artifact that keeps the reports directory (action.yml).
REPORTS_ARTIFACT_ENV = "PYTEST_RELEASE_REPORTS_ARTIFACT"
# Failed tests named in the step summary; the rest are counted (GitHub caps a summary at
# 1 MiB, and a long list hides the first failure, which is usually the cause).
FAILED_LISTED = 20


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


def reports_artifact(environ: Mapping[str, str] | None = None) -> str | None:
    """The artifact the stage action uploads the reports directory as, when it runs us."""
    return (os.environ if environ is None else environ).get(REPORTS_ARTIFACT_ENV) or None


def where_reports_are(
    reports_dir: str, artifact: str | None, environ: Mapping[str, str] | None = None
) -> str:
    """Markdown saying where the full reports are: the artifact (of this run, linked to
    the run's page, which lists its artifacts), else the directory on the runner."""
    if artifact is None:
        return f"reports in `{reports_dir}` on the runner (no artifact keeps them)"
    run_url = run_context(environ).get("run_url")
    where = f"the artifact `{artifact}`"
    if run_url:
        where += f" of [this run]({run_url}#artifacts)"
    return f"full reports (JUnit, plots, screenshots) in {where}"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


# The exception type of a generated check's failure (a lint finding, a Newman assertion, a
# canary interval or verdict): its message is the whole story, its location the check's.
GENERATED_CHECK = "GateCheckFailed"


def error_annotations(cases: Iterable[CaseRecord], stage: str, redact: Redactor) -> list[str]:
    """``::error`` workflow commands: one per failed or errored test, at its file and
    failing line.  Generated checks of one gate at one location (the canary's intervals
    and its stage verdict all point at the gate's table, and the verdict repeats the
    failing intervals' lines) are one annotation with each line once, not one per item."""
    groups: dict[tuple[str, ...], list[CaseRecord]] = {}
    for case in cases:
        if case.outcome not in ("failure", "error"):
            continue
        line = case.crash_line or case.line
        if case.error_type == GENERATED_CHECK:
            key: tuple[str, ...] = ("check", case.gate, case.file, str(line))
        else:
            key = ("test", case.nodeid)
        groups.setdefault(key, []).append(case)
    lines = []
    for members in groups.values():
        first = members[0]
        props = [f"file={escape_property(first.file)}"]
        line = first.crash_line or first.line
        if line is not None:
            props.append(f"line={line}")
        more = f" (+{len(members) - 1} more)" if len(members) > 1 else ""
        title = redact(f"{stage}/{first.gate}: {first.name}{more}")
        props.append(f"title={escape_property(title)}")
        texts = [redact(case.text or case.message) for case in members]
        message = texts[0] if len(texts) == 1 else _distinct_lines(texts)
        lines.append(f"::error {','.join(props)}::{escape_data(message)}")
    return lines


def _distinct_lines(texts: Iterable[str]) -> str:
    """The lines of ``texts`` in order, each once."""
    seen: dict[str, None] = {}
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                seen.setdefault(line, None)
    return "\n".join(seen)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: str) -> str:
    """``text`` as inline code that no backtick in it can end."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _message_line(case: CaseRecord) -> str:
    for line in (case.message or case.text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def failed_tests(cases: Iterable[CaseRecord], limit: int = FAILED_LISTED) -> list[str]:
    """Markdown lines naming the failed and errored tests (file:line and the first line
    of the message), at most ``limit`` of them; empty when none failed."""
    failed = [c for c in cases if c.outcome in ("failure", "error")]
    if not failed:
        return []
    lines = [
        f"**Failed tests** ({len(failed)})",
        "",
        "| gate | test | where | message |",
        "|---|---|---|---|",
    ]
    for case in failed[:limit]:
        line = case.crash_line or case.line
        where = f"{case.file}:{line}" if line is not None else case.file
        kind = "" if case.outcome == "failure" else " (error)"
        message = _message_line(case)
        if len(message) > 200:
            message = message[:199] + "…"
        lines.append(
            f"| {_cell(case.gate)} | {_cell(_code(case.name))}{kind} | {_cell(_code(where))} "
            f"| {_cell(message)} |"
        )
    if len(failed) > limit:
        lines += ["", f"… and {len(failed) - limit} more failed tests: see the JUnit report."]
    return [*lines, ""]


def step_summary(
    run: StageRun,
    outcome: StageOutcome,
    redact: Redactor,
    cases: Iterable[CaseRecord] = (),
    artifact: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    icon = "✅" if outcome.passed else "❌"
    result = shown_result(run, outcome)
    lines = [f"### {icon} pytest-release stage `{run.stage}`: {result}", ""]
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
    lines += ["", *failed_tests(cases)]
    reports_dir = run.relative(run.junit_path.parent)
    where = where_reports_are(reports_dir, artifact, environ)
    lines.append(where[0].upper() + where[1:] + ".")
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

"""Verdicts from a newman run: one per request item and one for the run's status item,
with the messages a failing item shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_release.gates.newman.runner import Execution, RunOutcome
from pytest_release.gates.tool_verdict import Verdict


def describe_execution(ex: Execution) -> list[str]:
    """Lines describing one execution: request, response, each assertion, errors."""
    head = f"{ex.method} {ex.url}"
    if ex.request_error:
        lines = [
            f"{head} -> request error: {ex.request_error}",
            "  " + request_error_hint(ex.request_error),
        ]
    else:
        timing = "" if ex.time_ms is None else f" in {ex.time_ms:g} ms"
        lines = [f"{head} -> {ex.code} {ex.status}{timing}".rstrip()]
    for assertion in ex.assertions:
        if assertion.skipped:
            lines.append(f"  SKIPPED {assertion.name}")
        elif assertion.error is None:
            lines.append(f"  passed  {assertion.name}")
        else:
            lines.append(f"  FAILED  {assertion.name}: {assertion.error}")
    lines += [f"  ERROR   {error}" for error in ex.script_errors]
    lines += [f"  ERROR   {error}" for error in ex.other_errors]
    return lines


def request_error_hint(error: str) -> str:
    if "ECONNREFUSED" in error:
        return (
            "connection refused: nothing listens at that address; is the service running, "
            "and does the URL (baseUrl, environment, env_vars) point at it?"
        )
    if "ENOTFOUND" in error or "EAI_AGAIN" in error:
        return "the host name does not resolve; check the URL and the environment variables"
    if "ETIMEDOUT" in error or "ESOCKETTIMEDOUT" in error:
        return "the request timed out; check the service or raise timeout_request"
    if "ECONNRESET" in error:
        return "the server closed the connection before answering"
    return "the request could not be completed; no response was received"


def request_verdict(
    outcome: RunOutcome, position: int, iteration: int, *, expected_name: str
) -> Verdict:
    """The verdict for one request in one iteration (0-based) of a completed run."""
    executions = outcome.executions_at(position, iteration)
    if not executions:
        if outcome.stopped_early:
            return Verdict("skipped", "not executed: newman stopped at the first failure (bail)")
        return Verdict(
            "skipped",
            "newman did not execute this request in this iteration (the collection's flow "
            "skipped it, e.g. pm.execution.setNextRequest)",
        )
    first = outcome.first_with_request_error(executions[0].request_error)
    if executions[0].request_error and first is not None and first is not executions[0]:
        # The same request error (connection refused, unknown host) is reported once,
        # by the first request that met it, with a count.
        return Verdict(
            "skipped",
            f"not checked: {executions[0].request_error} (reported once, by request "
            f"{first.name!r} in iteration {first.iteration + 1})",
        )
    wrong = [ex.name for ex in executions if ex.name != expected_name]
    if wrong:
        return Verdict(
            "failed",
            f"newman's report has {wrong[0]!r} at this position, the collection file has "
            f"{expected_name!r}; was the file changed while the gate ran?",
        )
    lines: list[str] = []
    properties: list[tuple[str, str]] = []
    for ex in executions:
        lines += describe_execution(ex)
        if ex.code is not None:
            properties.append(("newman_response_code", str(ex.code)))
        if ex.time_ms is not None:
            properties.append(("newman_response_time_ms", f"{ex.time_ms:g}"))
    failing = [ex for ex in executions if ex.failed]
    if not failing:
        assertions = [a for ex in executions for a in ex.assertions]
        if assertions and all(a.skipped for a in assertions):
            names = ", ".join(repr(a.name) for a in assertions)
            return Verdict(
                "skipped",
                f"every assertion was skipped (pm.test.skip): {names}",
                tuple(properties),
            )
        return Verdict("passed", "\n".join(lines), tuple(properties))
    summary = _failure_summary(failing)
    same = outcome.count_request_error(failing[0].request_error)
    if same > 1:
        summary += f" (the same for {same} requests; the others are skipped)"
    return Verdict("failed", "\n".join([summary, *lines]), tuple(properties))


def _failure_summary(failing: Sequence[Execution]) -> str:
    request_errors = [ex.request_error for ex in failing if ex.request_error]
    if request_errors:
        return f"request error: {request_errors[0]}"
    failed = [a.name for ex in failing for a in ex.failed_assertions]
    counted = len(failed)
    scripts = sum(len(ex.script_errors) + len(ex.other_errors) for ex in failing)
    parts = []
    if counted:
        names = ", ".join(repr(name) for name in failed)
        parts.append(f"{counted} assertion{'s' if counted != 1 else ''} failed: {names}")
    if scripts:
        parts.append(f"{scripts} script error{'s' if scripts != 1 else ''}")
    return ", ".join(parts)


def status_verdict(
    outcome: RunOutcome, *, expected_iterations: int, expected: Mapping[int, str]
) -> Verdict:
    """Did newman run the collection to the end, with a report consistent with the file?

    ``expected`` maps positions to request names.  Failed assertions do not fail this
    item (the request items report them); anything that is not a request's result does.
    """
    properties: list[tuple[str, str]] = []
    if outcome.exit_code is not None:
        properties.append(("newman_exit_code", str(outcome.exit_code)))
    if outcome.problem is not None:
        count = len(expected) * expected_iterations
        not_run = f"\n({count} request item(s) not run, skipped)" if count else ""
        return Verdict(
            "failed", _with_output(outcome.problem + not_run, outcome), tuple(properties)
        )
    problems: list[str] = []
    if outcome.run_error:
        problems.append(f"newman reported a run error: {outcome.run_error}")
    if outcome.iterations is not None and outcome.iterations != expected_iterations:
        problems.append(
            f"newman ran {outcome.iterations} iteration(s), the gate expected "
            f"{expected_iterations} (from 'iterations' or the iteration data file)"
        )
    if expected and not outcome.executions:
        problems.append(f"newman executed no request (the collection has {len(expected)})")
    for ex in outcome.executions:
        name = expected.get(ex.position)
        if name != ex.name:
            problems.append(
                f"newman's report has request {ex.name!r} at position {ex.position}, the "
                f"collection file has {name!r}; was the file changed while the gate ran?"
            )
            break
    if outcome.unmatched_failures:
        problems.append(
            "failures newman reported outside any request:\n"
            + "\n".join(f"  {text}" for text in outcome.unmatched_failures)
        )
    counted = sum(len(ex.failed_assertions) for ex in outcome.executions)
    if outcome.assertions_failed is not None and outcome.assertions_failed != counted:
        problems.append(
            f"newman's report is inconsistent: run.stats.assertions.failed = "
            f"{outcome.assertions_failed}, but {counted} failed assertion(s) are listed in "
            "run.executions"
        )
    any_failure = any(ex.failed for ex in outcome.executions) or outcome.unmatched_failures
    if outcome.exit_code not in (0, None) and not any_failure and not problems:
        problems.append(
            f"newman exited with code {outcome.exit_code} although its report shows no failure"
        )
    failing = sum(1 for ex in outcome.executions if ex.failed)
    summary = (
        f"newman exited with code {outcome.exit_code} after {outcome.duration:.1f}s: "
        f"{len(outcome.executions)} request(s) in {outcome.iterations} iteration(s), "
        f"{counted} of {outcome.assertions_total} assertion(s) failed, "
        f"{failing} request(s) failed"
    )
    properties += [
        ("newman_requests", str(len(outcome.executions))),
        ("newman_assertions_failed", str(counted)),
    ]
    if problems:
        return Verdict(
            "failed", _with_output("\n".join([*problems, summary]), outcome), tuple(properties)
        )
    return Verdict("passed", summary, tuple(properties))


def _with_output(message: str, outcome: RunOutcome) -> str:
    if outcome.stderr:
        return f"{message}\nnewman output:\n{outcome.stderr}"
    return message

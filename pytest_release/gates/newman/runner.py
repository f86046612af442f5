"""Run newman once for a collection and condense its JSON report into results per request.

newman's exit code is 0 or 1 whatever went wrong (failed assertion, refused connection,
script error, bad environment file), so it is never trusted alone: the outcome is read
from the report (``run.executions[]``, ``run.failures[]``, ``run.stats``).  The condensed
:class:`RunOutcome` is JSON-serialisable so one process can run newman and every xdist
worker can read the result (:meth:`pytest_release.stage.run_dir.RunDir.run_once`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_release.gates.tool_run import ToolFailure, output_tail, run_gate_tool
from pytest_release.system.json_record import JsonRecord

# Seconds the subprocess may run past newman's own --timeout before it is killed.
KILL_GRACE = 30.0
_CUT = "...\n"  # before the end of newman's output, when it is cut


@dataclass(frozen=True)
class NewmanCommand:
    """What to run; :meth:`argv` is the newman command line."""

    binary: str
    collection: Path
    export: Path
    environment: Path | None = None
    globals: Path | None = None
    iteration_data: Path | None = None
    iterations: int | None = None
    env_vars: tuple[tuple[str, str], ...] = ()
    global_vars: tuple[tuple[str, str], ...] = ()
    timeout: float = 600.0
    timeout_request: float | None = None
    timeout_script: float | None = None
    bail: bool = False
    args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        argv = [self.binary, "run", str(self.collection)]
        argv += ["--reporters", "json", "--reporter-json-export", str(self.export)]
        if self.environment is not None:
            argv += ["--environment", str(self.environment)]
        if self.globals is not None:
            argv += ["--globals", str(self.globals)]
        if self.iteration_data is not None:
            argv += ["--iteration-data", str(self.iteration_data)]
        if self.iterations is not None:
            argv += ["--iteration-count", str(self.iterations)]
        for key, value in self.env_vars:
            argv += ["--env-var", f"{key}={value}"]
        for key, value in self.global_vars:
            argv += ["--global-var", f"{key}={value}"]
        argv += ["--timeout", str(_ms(self.timeout))]
        if self.timeout_request is not None:
            argv += ["--timeout-request", str(_ms(self.timeout_request))]
        if self.timeout_script is not None:
            argv += ["--timeout-script", str(_ms(self.timeout_script))]
        if self.bail:
            argv.append("--bail")
        argv += list(self.args)
        return argv


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@dataclass(frozen=True)
class AssertionResult:
    name: str
    error: str | None = None
    skipped: bool = False


@dataclass(frozen=True)
class Execution:
    """One request as newman executed it in one iteration (0-based)."""

    iteration: int
    position: int
    name: str
    method: str = "GET"
    url: str = ""
    code: int | None = None
    status: str = ""
    time_ms: float | None = None
    request_error: str | None = None
    assertions: tuple[AssertionResult, ...] = ()
    script_errors: tuple[str, ...] = ()
    other_errors: tuple[str, ...] = ()

    @property
    def failed_assertions(self) -> tuple[AssertionResult, ...]:
        return tuple(a for a in self.assertions if a.error is not None)

    @property
    def failed(self) -> bool:
        return bool(
            self.request_error or self.failed_assertions or self.script_errors or self.other_errors
        )


@dataclass(frozen=True)
class RunOutcome(JsonRecord):
    """What happened when newman ran a collection.

    ``problem`` is set when newman did not complete a run with a readable report
    (missing binary, bad environment file, timeout, crash): then nothing else is known.
    """

    problem: str | None = None
    exit_code: int | None = None
    stderr: str = ""
    duration: float = 0.0
    iterations: int | None = None
    run_error: str | None = None
    executions: tuple[Execution, ...] = ()
    unmatched_failures: tuple[str, ...] = ()
    assertions_total: int | None = None
    assertions_failed: int | None = None
    requests_total: int | None = None
    stopped_early: bool = False

    def first_with_request_error(self, error: str | None) -> Execution | None:
        """The first execution that failed with ``error`` (None for no error)."""
        if not error:
            return None
        return next((ex for ex in self.executions if ex.request_error == error), None)

    def count_request_error(self, error: str | None) -> int:
        return sum(1 for ex in self.executions if error and ex.request_error == error)

    def executions_at(self, position: int, iteration: int) -> tuple[Execution, ...]:
        return tuple(
            ex for ex in self.executions if ex.position == position and ex.iteration == iteration
        )


def failed(problem: str, **kwargs: Any) -> RunOutcome:
    return RunOutcome(problem=problem, **kwargs)


def run_newman(command: NewmanCommand, cwd: Path) -> RunOutcome:
    """Run newman (killed after ``timeout + KILL_GRACE``) and read its report."""
    command.export.unlink(missing_ok=True)
    tool = run_gate_tool(
        command.argv(),
        cwd,
        command.timeout + KILL_GRACE,
        f"newman {command.binary}",
        killed=f"newman did not finish within timeout = {command.timeout:g}s "
        f"(+{KILL_GRACE:g}s grace) and was killed",
        mark=_CUT,
    )
    if isinstance(tool, ToolFailure):
        return failed(tool.problem, stderr=tool.output, duration=tool.duration)
    stdout, stderr, duration = tool.stdout, tool.stderr, tool.duration
    output = output_tail("\n".join(part for part in (stderr.strip(), stdout.strip()) if part), _CUT)
    code = tool.returncode
    if not command.export.is_file():
        if "callback timed out" in output:
            reason = f"the run exceeded timeout = {command.timeout:g}s (newman --timeout)"
        else:
            reason = "newman did not write its JSON report"
        return failed(
            f"{reason}; newman exited with code {code}",
            exit_code=code,
            stderr=output,
            duration=duration,
        )
    try:
        report = json.loads(command.export.read_text(encoding="utf-8"))
        run = report["run"]
        if not isinstance(run, dict):
            raise TypeError("'run' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return failed(
            f"newman's JSON report {command.export} cannot be read ({exc}); newman exited "
            f"with code {code}",
            exit_code=code,
            stderr=output,
            duration=duration,
        )
    return condense(run, exit_code=code, stderr=output, duration=duration, bail=command.bail)


def condense(
    run: Mapping[str, Any], *, exit_code: int | None, stderr: str, duration: float, bail: bool
) -> RunOutcome:
    """The per-request results of newman's ``run`` object."""
    stats = _dict(run.get("stats"))
    failures = [f for f in _list(run.get("failures")) if isinstance(f, dict)]
    request_errors: dict[tuple[int, int], str] = {}
    for failure in failures:
        if failure.get("at") == "request" and (key := _cursor_key(failure)) is not None:
            request_errors.setdefault(key, str(_dict(failure.get("error")).get("message", "")))

    built: list[dict[str, Any]] = []
    for raw in _list(run.get("executions")):
        if not isinstance(raw, dict) or (key := _cursor_key(raw)) is None:
            continue
        built.append(_execution(raw, key, request_errors))
    by_key = {(ex["iteration"], ex["position"]): ex for ex in built}

    unmatched: list[str] = []
    for failure in failures:
        error = _dict(failure.get("error"))
        if error.get("name") == "AssertionFailure":
            continue  # newman's --bail signal, repeating an assertion error already listed
        message = str(error.get("message", ""))
        text = f"{failure.get('at', '?')}: {error.get('name', 'Error')}: {message}"
        key = _cursor_key(failure)
        target = by_key.get(key) if key is not None else None
        if target is None:
            source = _dict(failure.get("source")).get("name")
            unmatched.append(f"{source}: {text}" if source else text)
            continue
        known = [a["error"] for a in target["assertions"] if a["error"]]
        known += target["script_errors"] + target["other_errors"]
        if target["request_error"]:
            known.append(target["request_error"])
        if not any(message and message in k for k in known):
            target["other_errors"].append(text)

    executions = tuple(
        Execution(
            **{
                **ex,
                "assertions": tuple(AssertionResult(**a) for a in ex["assertions"]),
                "script_errors": tuple(ex["script_errors"]),
                "other_errors": tuple(ex["other_errors"]),
            }
        )
        for ex in built
    )
    run_error = run.get("error")
    any_failure = any(ex.failed for ex in executions) or bool(unmatched)
    return RunOutcome(
        exit_code=exit_code,
        stderr=stderr,
        duration=duration,
        iterations=_int(_dict(stats.get("iterations")).get("total")),
        run_error=None if run_error in (None, "") else _describe_error(run_error),
        executions=executions,
        unmatched_failures=tuple(unmatched),
        assertions_total=_int(_dict(stats.get("assertions")).get("total")),
        assertions_failed=_int(_dict(stats.get("assertions")).get("failed")),
        requests_total=_int(_dict(stats.get("requests")).get("total")),
        stopped_early=bail and any_failure,
    )


def _execution(
    raw: Mapping[str, Any], key: tuple[int, int], request_errors: Mapping[tuple[int, int], str]
) -> dict[str, Any]:
    item = _dict(raw.get("item"))
    request = _dict(raw.get("request"))
    response = _dict(raw.get("response"))
    request_error: str | None = None
    if raw.get("requestError"):
        request_error = request_errors.get(key) or _describe_error(raw["requestError"])
    assertions = []
    for entry in _list(raw.get("assertions")):
        if not isinstance(entry, dict):
            continue
        error = entry.get("error")
        assertions.append(
            {
                "name": str(entry.get("assertion", "")),
                "error": None if not error else _describe_error(error),
                "skipped": bool(entry.get("skipped", False)),
            }
        )
    script_errors = []
    for kind in ("prerequestScript", "testScript"):
        for script in _list(raw.get(kind)):
            error = _dict(script).get("error")
            if error:
                label = "pre-request script" if kind == "prerequestScript" else "test script"
                script_errors.append(f"{label}: {_describe_error(error)}")
    code = response.get("code")
    time_ms = response.get("responseTime")
    return {
        "iteration": key[0],
        "position": key[1],
        "name": str(item.get("name", "")),
        "method": str(request.get("method", "GET")),
        "url": url_text(request.get("url")),
        "code": code if isinstance(code, int) else None,
        "status": str(response.get("status", "")),
        "time_ms": float(time_ms) if isinstance(time_ms, int | float) else None,
        "request_error": request_error,
        "assertions": assertions,
        "script_errors": script_errors,
        "other_errors": [],
    }


def _describe_error(error: object) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        if message:
            name = error.get("name")
            return f"{name}: {message}" if name and name != "AssertionError" else str(message)
        if error.get("code"):
            target = ":".join(str(error[k]) for k in ("address", "port") if error.get(k))
            return f"{error.get('syscall', 'request')} {error['code']} {target}".strip()
        return json.dumps(error, sort_keys=True)[:500]
    return str(error)


def url_text(url: object) -> str:
    """A request URL from newman's report (a string or a Postman URL object)."""
    if isinstance(url, str):
        return url
    data = _dict(url)
    if not data:
        return ""
    if isinstance(data.get("raw"), str):
        return str(data["raw"])
    host = data.get("host")
    host_text = ".".join(str(h) for h in host) if isinstance(host, list) else str(host or "")
    text = f"{data['protocol']}://{host_text}" if data.get("protocol") else host_text
    if data.get("port"):
        text += f":{data['port']}"
    path = data.get("path")
    if isinstance(path, list) and path:
        text += "/" + "/".join(str(p) for p in path)
    elif isinstance(path, str) and path:
        text += path if path.startswith("/") else "/" + path
    query = [q for q in _list(data.get("query")) if isinstance(q, dict) and not q.get("disabled")]
    if query:
        text += "?" + "&".join(
            str(q.get("key", "")) + ("" if q.get("value") is None else f"={q['value']}")
            for q in query
        )
    return text


def _cursor_key(entry: Mapping[str, Any]) -> tuple[int, int] | None:
    cursor = _dict(entry.get("cursor"))
    iteration, position = cursor.get("iteration"), cursor.get("position")
    if isinstance(iteration, int) and isinstance(position, int):
        return iteration, position
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

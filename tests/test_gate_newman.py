"""The newman gate: real newman against a real HTTP server on 127.0.0.1.

newman must be installed (``bash scripts/install-newman.sh``, which CI runs); when it is
not, these tests fail with that command instead of skipping.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.http_server import QuietHandler, address, serving
from tests.support.junit import Case, cases_by_name, stage_report
from tests.support.spine import ledger_runs, project, run_stage

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "newman"


@pytest.fixture(scope="session")
def newman_bin() -> str:
    local = REPO / "node_modules" / ".bin" / "newman"
    if local.is_file():
        return str(local)
    found = shutil.which("newman")
    if found:
        return found
    pytest.fail(
        f"newman is not installed (looked for {local} and on PATH); the newman gate's tests "
        "need it: run `bash scripts/install-newman.sh`",
        pytrace=False,
    )


@dataclass
class Api:
    """A tiny shop API; records every request as ``METHOD /path``."""

    url: str = ""
    requests: list[str] = field(default_factory=list)

    def count(self, request: str) -> int:
        return sum(1 for r in self.requests if r == request)


@pytest.fixture
def api() -> Iterator[Api]:
    state = Api()
    lock = threading.Lock()

    class Handler(QuietHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            with lock:
                state.requests.append(f"{self.command} {parts.path}")
            status: int = 404
            body: dict[str, object] = {"error": "not found"}
            if parts.path == "/health":
                status, body = 200, {"status": "ok"}
            elif parts.path == "/slow":
                time.sleep(1.5)  # only used to exceed a 0.5 s newman --timeout
                status, body = 200, {}
            elif parts.path == "/orders" and self.command == "POST":
                sku = parse_qs(parts.query).get("sku", [""])[0]
                status, body = (400, {"error": "bad sku"}) if sku == "bad" else (201, {"sku": sku})
            elif parts.path == "/orders":
                status, body = 200, {"orders": []}
            data = json.dumps(body).encode()
            if parts.path == "/missing":
                data = b"no such page"
            # /slow: newman may have given up at its --timeout and closed the connection
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.answer(status, data, "application/json")

        do_GET = do_POST = _answer

    with serving(Handler) as server:
        state.url = f"http://{address(server)}"
        yield state


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def newman_project(
    pytester: pytest.Pytester,
    gate: str,
    *files: str,
    stage: str = 'gates = ["newman"]',
    extra: str = "",
    **tests: str,
) -> Path:
    """A project whose stage ``api`` runs the newman gate configured with ``gate``."""
    root = project(
        pytester,
        f"""
        {extra}
        [gates.newman]
        {gate}
        [stages.api]
        {stage}
        """,
        **tests,
    )
    (root / "api").mkdir(exist_ok=True)
    for name in files:
        shutil.copy(DATA / name, root / "api" / name)
    return root


def wrapper(root: Path, newman_bin: str) -> str:
    """A newman wrapper logging each start to ``newman-starts.log``."""
    script = root / "newman-wrapper"
    script.write_text(
        f'#!/bin/sh\necho "$$" >> "{root}/newman-starts.log"\nexec "{newman_bin}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def assert_verbose(result: pytest.RunResult, nodeid: str, outcome: str) -> None:
    """``-v`` printed ``nodeid OUTCOME`` (or ``[gwN] ... OUTCOME nodeid`` under xdist)."""
    lines = result.stdout.lines
    if not any(
        line.startswith(f"{nodeid} {outcome}") or line.endswith(f"{outcome} {nodeid}")
        for line in map(str.rstrip, lines)
    ):
        raise AssertionError(f"no '{nodeid}' {outcome} line in:\n" + "\n".join(lines))


def collection_project(
    pytester: pytest.Pytester,
    collection: str,
    newman: str,
    *,
    base_url: str | None = None,
    copy: bool = True,
) -> Path:
    """Stage ``api`` runs the newman gate over ``api/<collection>`` (copied from
    tests/data unless ``copy`` is false) with ``newman``, and ``baseUrl`` when given."""
    env_vars = f'env_vars = {{ baseUrl = "{base_url}" }}' if base_url is not None else ""
    gate = f'collections = ["api/{collection}"]\nnewman = "{newman}"\n{env_vars}\n'
    return newman_project(pytester, gate, *([collection] if copy else []))


def newman_starts(root: Path) -> int:
    log = root / "newman-starts.log"
    return len(log.read_text().split()) if log.exists() else 0


def cases(root: Path, stage: str = "api") -> dict[str, Case]:
    return cases_by_name(stage_report(root, stage))


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_passing_collection_runs_newman_once_and_names_items_by_folder(
    pytester: pytest.Pytester, api: Api, newman_bin: str, xdist: list[str]
) -> None:
    root = newman_project(
        pytester,
        f"""
        collections = ["api/*.postman_collection.json"]
        newman = "{wrapper(pytester.path, newman_bin)}"
        env_vars = {{ baseUrl = "{api.url}" }}
        """,
        "shop.postman_collection.json",
    )
    result = run_stage(pytester, "api", "-v", *xdist)
    result.assert_outcomes(passed=4)
    for name in ("(newman run)", "health", "orders/create order", "orders/admin/list orders"):
        assert_verbose(result, f"gate:newman::shop::{name}", "PASSED")
    assert newman_starts(root) == 1, "newman must run once per session"
    assert api.count("GET /health") == 1
    assert api.count("POST /orders") == 1
    if xdist:
        workers = {w for w in ("[gw0]", "[gw1]") if w in result.stdout.str()}
        assert workers == {"[gw0]", "[gw1]"}, "items should have run on both workers"
    collection = root / "api" / "shop.postman_collection.json"
    by_name = cases(root)
    create = by_name["orders/create order"]
    assert create.file == "api/shop.postman_collection.json"
    assert create.line == str(line_of(collection, '"name": "create order"'))
    assert ledger_runs(root)[-1]["outcome"] == "passed"


def test_failing_assertion_shows_expected_actual_status_and_time(
    pytester: pytest.Pytester, api: Api, newman_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = collection_project(
        pytester, "failing.postman_collection.json", newman_bin, base_url=api.url
    )
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    result = run_stage(pytester, "api")
    assert result.ret == 1
    result.assert_outcomes(passed=3, failed=1)
    request_line = line_of(root / "api" / "failing.postman_collection.json", '"get missing"')
    # The GitHub annotation lands on the request in the collection file.
    result.stdout.fnmatch_lines(
        [
            f"::error file=api/failing.postman_collection.json,line={request_line},"
            "title=api/newman%3A get missing::2 assertions failed: 'status is 200', "
            "'answers json'%0AGET *"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ failing::get missing _*",
            "2 assertions failed: 'status is 200', 'answers json'",
            f"GET {api.url}/missing -> 404 Not Found in * ms",
            "  FAILED  status is 200: expected response to have status code 200 but got 404",
            "  FAILED  answers json: *",
        ]
    )
    # The exit code (1) is explained by the failing request, so the status item passes.
    case = cases(root)["(newman run)"]
    assert case.outcome == "passed"
    failing = cases(root)["get missing"]
    assert failing.outcome == "failure"
    assert failing.line == str(request_line)
    assert failing.properties["newman_response_code"] == "404"


def test_connection_refused_is_a_request_error(pytester: pytest.Pytester, newman_bin: str) -> None:
    port = closed_port()
    newman_project(
        pytester,
        f"""
        collections = ["api/refused.postman_collection.json"]
        newman = "{newman_bin}"
        env_vars = {{ deadUrl = "http://127.0.0.1:{port}" }}
        """,
        "refused.postman_collection.json",
    )
    result = run_stage(pytester, "api")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"request error: connect ECONNREFUSED 127.0.0.1:{port}",
            f"GET http://127.0.0.1:{port}/ping -> request error: connect ECONNREFUSED *",
            "  connection refused: nothing listens at that address*",
        ]
    )
    assert "assertions failed" not in result.stdout.str()


def test_malformed_collection_fails_with_the_json_error_and_line(
    pytester: pytest.Pytester, newman_bin: str
) -> None:
    root = newman_project(
        pytester,
        f"""
        collections = ["api/*.postman_collection.json"]
        newman = "{newman_bin}"
        """,
        "malformed.postman_collection.json",
    )
    result = run_stage(pytester, "api")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*malformed.postman_collection.json is not valid JSON: Expecting ',' delimiter "
            "at line 3 column *; fix the file or export the collection again*",
        ]
    )
    case = cases(root)["(newman run)"]
    assert case.file == "api/malformed.postman_collection.json"
    assert case.line == "3"
    assert newman_starts(root) == 0


def test_missing_collection_file_and_empty_pattern_fail(
    pytester: pytest.Pytester, newman_bin: str
) -> None:
    newman_project(
        pytester,
        f"""
        collections = ["api/gone.postman_collection.json", "postman/*.json"]
        newman = "{newman_bin}"
        """,
    )
    result = run_stage(pytester, "api")
    assert result.ret == 1
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*collection file api/gone.postman_collection.json does not exist under * (listed in "
            "[[]tool.pytest-release.gates.newman[]] collections); fix the path or add the file",
            "*collections pattern 'postman/[*].json' matches no file under *",
        ]
    )


def test_default_collections_that_match_nothing_add_no_item(
    pytester: pytest.Pytester,
) -> None:
    """The built-in newman gate stays quiet in a project without collections."""
    project(
        pytester,
        '[stages.api]\ngates = ["newman"]\n',
        **{"tests/newman/test_plain.py": "def test_plain(): pass\n"},
    )
    result = run_stage(pytester, "api", "-v")
    result.assert_outcomes(passed=1)
    assert "(newman run)" not in result.stdout.str()


def test_configured_newman_missing_fails_status_and_requests(
    pytester: pytest.Pytester, api: Api
) -> None:
    collection_project(
        pytester, "shop.postman_collection.json", "node_modules/.bin/newman", base_url=api.url
    )
    result = run_stage(pytester, "api", "-rs")
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "newman is not installed: newman = 'node_modules/.bin/newman' (gate 'newman') does "
            "not exist at */node_modules/.bin/newman; install it with `npm install --save-dev "
            "newman@6` in *",
        ]
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED * not run: newman did not run shop.postman_collection.json *"]
    )
    assert api.requests == []


def test_newman_missing_from_default_locations(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    newman_project(
        pytester,
        'collections = ["api/shop.postman_collection.json"]',
        "shop.postman_collection.json",
    )
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("newman") is None, "this test needs a PATH without newman"
    result = run_stage(pytester, "api")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "newman is not installed: looked for */node_modules/.bin/newman and for 'newman' "
            "on PATH; install it with `npm install --save-dev newman@6`*",
        ]
    )


@pytest.mark.parametrize("data_file", ["skus.json", "skus.csv"])
def test_iterations_from_data_file_are_separate_items(
    pytester: pytest.Pytester,
    api: Api,
    newman_bin: str,
    monkeypatch: pytest.MonkeyPatch,
    data_file: str,
) -> None:
    """Also: env_vars (with ${VAR} from the environment) override the environment file,
    whose baseUrl points at a closed port."""
    root = newman_project(
        pytester,
        f"""
        collections = ["api/iterate.postman_collection.json"]
        iteration_data = "api/{data_file}"
        environment = "api/dead.postman_environment.json"
        env_vars = {{ baseUrl = "${{NEWMAN_TEST_BASE_URL}}" }}
        newman = "{newman_bin}"
        """,
        "iterate.postman_collection.json",
        data_file,
        "dead.postman_environment.json",
    )
    monkeypatch.setenv("NEWMAN_TEST_BASE_URL", api.url)
    result = run_stage(pytester, "api", "-v")
    result.assert_outcomes(passed=3, failed=1)
    for iteration, outcome in ((1, "PASSED"), (2, "FAILED"), (3, "PASSED")):
        assert_verbose(
            result, f"gate:newman::iterate::checkout/buy[iteration {iteration}]", outcome
        )
    result.stdout.fnmatch_lines([f"POST {api.url}/orders?sku=bad -> 400 Bad Request in *"])
    assert api.count("POST /orders") == 3
    assert "checkout/buy[iteration 2]" in cases(root)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        pytest.param(
            'env_vars = { baseUrl = "${NEWMAN_TEST_UNSET}" }',
            "newman was not started: env_vars.baseUrl refers to ${NEWMAN_TEST_UNSET}, but the "
            "environment variable NEWMAN_TEST_UNSET is not set; export it*",
            id="unset-variable",
        ),
        pytest.param(
            'environment = "api/staging.postman_environment.json"',
            "newman was not started: environment file api/staging.postman_environment.json "
            "does not exist (gate key environment = 'api/staging.postman_environment.json')",
            id="missing-environment",
        ),
        pytest.param(
            'iteration_data = "api/shop.postman_collection.json"',
            "newman was not started: iteration data file api/shop.postman_collection.json must "
            "hold a non-empty JSON array of objects, one per iteration*",
            id="bad-iteration-data",
        ),
    ],
)
def test_bad_inputs_fail_before_newman_starts(
    pytester: pytest.Pytester,
    newman_bin: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    message: str,
) -> None:
    root = newman_project(
        pytester,
        'collections = ["api/shop.postman_collection.json"]\n'
        f"{setting}\n"
        f'newman = "{wrapper(pytester.path, newman_bin)}"',
        "shop.postman_collection.json",
    )
    monkeypatch.delenv("NEWMAN_TEST_UNSET", raising=False)
    result = run_stage(pytester, "api", "-rs")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines([message])
    result.stdout.fnmatch_lines(
        ["SKIPPED * not run: newman did not run shop.postman_collection.json *"]
    )
    assert newman_starts(root) == 0


@pytest.mark.parametrize(
    ("collection", "script", "outcomes", "lines"),
    [
        pytest.param(
            "failing.postman_collection.json",
            '"$NEWMAN" "$@"; exit 0',
            {"passed": 3, "failed": 1},
            ["FAILED gate:newman::failing::get missing - 2 assertions failed*"],
            id="exit-0-with-failed-assertions",
        ),
        pytest.param(
            "shop.postman_collection.json",
            '"$NEWMAN" "$@"; exit 1',
            {"passed": 3, "failed": 1},
            ["newman exited with code 1 although its report shows no failure"],
            id="exit-1-without-failures",
        ),
        pytest.param(
            "shop.postman_collection.json",
            'echo "newman: simulated crash" >&2; exit 1',
            {"failed": 1, "skipped": 3},
            [
                "newman did not write its JSON report; newman exited with code 1",
                "newman output:",
                "newman: simulated crash",
            ],
            id="no-report",
        ),
    ],
)
def test_exit_code_is_not_trusted_alone(
    pytester: pytest.Pytester,
    api: Api,
    newman_bin: str,
    collection: str,
    script: str,
    outcomes: dict[str, int],
    lines: list[str],
) -> None:
    """A fake newman (a wrapper around the real one, named as such) that lies with its exit
    code, or crashes: the report decides, and a run without a report is a failure."""
    fake = pytester.path / "fake-newman"
    fake.write_text(f'#!/bin/sh\nNEWMAN="{newman_bin}"\n{script}\n')
    fake.chmod(0o755)
    collection_project(pytester, collection, str(fake), base_url=api.url)
    result = run_stage(pytester, "api")
    assert result.ret == 1
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines(lines)


def test_bail_skips_requests_after_the_first_failure(
    pytester: pytest.Pytester, api: Api, newman_bin: str
) -> None:
    newman_project(
        pytester,
        f"""
        collections = ["api/failing.postman_collection.json"]
        newman = "{newman_bin}"
        env_vars = {{ baseUrl = "{api.url}" }}
        bail = true
        """,
        "failing.postman_collection.json",
    )
    result = run_stage(pytester, "api", "-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*not executed: newman stopped at the first failure (bail)*"])
    assert api.count("GET /health") == 1, "newman should have stopped before the last request"


def test_run_timeout_fails_the_status_item(
    pytester: pytest.Pytester, api: Api, newman_bin: str
) -> None:
    newman_project(
        pytester,
        f"""
        collections = ["api/slow.postman_collection.json"]
        newman = "{newman_bin}"
        env_vars = {{ baseUrl = "{api.url}" }}
        timeout = "500ms"
        """,
        "slow.postman_collection.json",
    )
    result = run_stage(pytester, "api")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "the run exceeded timeout = 0.5s (newman --timeout); newman exited with code 1",
            "newman output:",
            "*callback timed out*",
        ]
    )


def test_secrets_in_assertion_messages_are_redacted(
    pytester: pytest.Pytester, api: Api, newman_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-newman-token"
    root = newman_project(
        pytester,
        f"""
        collections = ["api/secret.postman_collection.json"]
        newman = "{newman_bin}"
        env_vars = {{ baseUrl = "{api.url}", token = "${{NEWMAN_TEST_TOKEN}}" }}
        """,
        "secret.postman_collection.json",
        extra='secrets = ["NEWMAN_TEST_TOKEN"]',
    )
    monkeypatch.setenv("NEWMAN_TEST_TOKEN", secret)
    result = run_stage(pytester, "api")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  FAILED  token is the expected one: expected '***' to *"])
    assert secret not in result.stdout.str()
    assert secret not in (root / "reports" / "api.xml").read_text()


def test_failed_newman_gate_closes_the_next_gate(
    pytester: pytest.Pytester, api: Api, newman_bin: str, xdist: list[str]
) -> None:
    root = newman_project(
        pytester,
        f"""
        collections = ["api/failing.postman_collection.json"]
        newman = "{newman_bin}"
        env_vars = {{ baseUrl = "{api.url}" }}
        [gates.later]
        paths = ["tests/later/*"]
        """,
        "failing.postman_collection.json",
        stage='gates = ["newman", "later"]',
        **{
            "tests/later/test_later.py": """
                import pathlib
                def test_later():
                    pathlib.Path(__file__).with_name("ran").write_text("yes")
            """
        },
    )
    result = run_stage(pytester, "api", "-rs", *xdist)
    assert result.ret == 1
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["gate newman: failed*", "gate later: closed (gate 'newman' failed)*"]
    )
    assert not (root / "tests" / "later" / "ran").exists(), "a closed gate's test ran"


def test_bad_configuration_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    newman_project(
        pytester,
        """
        timeout = "soon"
        args = ["--reporters", "cli"]
        env_vars = { "a=b" = "x" }
        iterations = 0
        colections = ["typo"]
        """,
    )
    result = run_stage(pytester, "api")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines_random(
        [
            "*gates.newman.timeout = 'soon': *expected a duration such as 30, '30s'*",
            "*gates.newman.args = *newman flag '--reporters' is set by the gate*",
            "*gates.newman.env_vars = *variable name 'a=b' is invalid*",
            "*gates.newman.iterations = 0: *greater than or equal to 1*",
            "*gates.newman.colections: unknown key*",
        ]
    )


def test_unreadable_or_malformed_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    from pytest_release.gates.newman.collection import (
        CollectionError,
        count_iteration_data,
        read_json_file,
    )

    (tmp_path / "env.json").write_text("[1]", encoding="utf-8")
    (tmp_path / "data.json").write_text("[{", encoding="utf-8")
    with pytest.raises(CollectionError, match=r"^environment file e\.json does not exist$"):
        read_json_file(tmp_path / "nope.json", "environment", "e.json")
    with pytest.raises(
        CollectionError, match=r"must hold a JSON object \(a Postman globals export\)"
    ):
        read_json_file(tmp_path / "env.json", "globals")
    with pytest.raises(
        CollectionError, match=r"data\.json is not valid JSON: .* \(use a JSON"
    ) as e:
        count_iteration_data(tmp_path / "data.json")
    assert e.value.line == 1

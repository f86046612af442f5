"""The perf gate: real Locust (headless, as a subprocess) against real HTTP services on
127.0.0.1 — the reference shop, and a small server with a deliberately slow route and a
broken one.  No timing assertions: the slow route sleeps 300 ms against a 200 ms limit,
far apart, and the messages are checked for the measured value, not its size.  Runs
last 5 s with min_requests = 3: on a loaded machine (2 shared cores) Locust's users can
take most of a shorter run to start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_release.gates.perf.locustfile import endpoints_in
from tests.support.http_server import QuietHandler, address, serving
from tests.support.junit import Case, cases_by_name, stage_report
from tests.support.spine import project, run_stage

REPO = Path(__file__).resolve().parents[1]
LOCUST = Path(sys.executable).parent / "locust"


def _wait_http(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the service exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within 30 s")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def shop() -> Iterator[str]:
    """The reference shop (examples/shop) as a process on 127.0.0.1."""
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(REPO / "examples" / "shop")}
    process = subprocess.Popen(
        [sys.executable, "-m", "shop"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/health", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def faulty() -> Iterator[str]:
    """``/fast`` answers at once, ``/slow`` after 300 ms, ``/broken`` with 500."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: headers and body are two writes; with Nagle on, the body waits for the
        # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            status = 200
            if self.path == "/slow":
                time.sleep(0.3)
            elif self.path == "/broken":
                status = 500
            self.answer(status, b"{}", "application/json")

    with serving(Handler) as server:
        yield f"http://{address(server)}"


FAULTY_LOCUSTFILE = """
from locust import HttpUser, constant, task

OTHER = "/other"   # not a literal in the call: its name is known only at run time

class User(HttpUser):
    wait_time = constant(0.02)

    @task
    def fast(self):
        self.client.get("/fast")

    @task
    def slow(self):
        self.client.get("/slow")

    @task
    def broken(self):
        self.client.get("/broken")

    @task
    def other(self):
        self.client.get(OTHER)
"""


def _wrapper(root: Path) -> str:
    """A Locust wrapper logging each start to ``locust-starts.log``."""
    if not LOCUST.is_file():
        pytest.fail(f"Locust is not installed at {LOCUST}: pip install 'pytest-release[perf]'")
    script = root / "locust-wrapper"
    script.write_text(f'#!/bin/sh\necho "$$" >> "{root}/locust-starts.log"\nexec "{LOCUST}" "$@"\n')
    script.chmod(0o755)
    return str(script)


def _starts(root: Path) -> int:
    log = root / "locust-starts.log"
    return len(log.read_text().split()) if log.exists() else 0


def _perf_project(pytester: pytest.Pytester, gate: str, locustfile: str | None) -> Path:
    root = project(
        pytester,
        f"""
        [gates.perf]
        kind = "perf"
        {gate}
        [stages.load]
        gates = ["perf"]
        """,
    )
    if locustfile is not None:
        (root / "perf").mkdir(exist_ok=True)
        (root / "perf" / "locustfile.py").write_text(locustfile)
    return root


def _faulty_project(pytester: pytest.Pytester, faulty: str, endpoints: str) -> Path:
    """The perf gate over the faulty service (``FAULTY_LOCUSTFILE``, 4 users for 5 s, at
    least 3 requests and p95 < 3 s an endpoint) with the ``[gates.perf.endpoints]`` table
    ``endpoints``."""
    gate = f"""
        host = "{faulty}"
        locustfile = "perf/locustfile.py"
        users = 4
        duration = "5s"
        min_requests = 3
        p95_below_ms = 3000   # generous: the machine may be loaded
        [gates.perf.endpoints]{endpoints}"""
    return _perf_project(pytester, gate, FAULTY_LOCUSTFILE)


def _outcomes(result: pytest.RunResult, **expected: int) -> None:
    """``assert_outcomes``, showing the run's output when it does not match."""
    try:
        result.assert_outcomes(**expected)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{result.stdout.str()[-6000:]}") from None


def _cases(root: Path) -> dict[str, Case]:
    return cases_by_name(stage_report(root, "load"))


def test_good_service_passes_with_one_locust_run_and_the_html_report_linked(
    pytester: pytest.Pytester, shop: str, xdist: list[str]
) -> None:
    locustfile = (REPO / "suites" / "perf" / "locustfile.py").read_text()
    root = _perf_project(
        pytester,
        f"""
        host = "{shop}"
        locustfile = "perf/locustfile.py"
        locust = "{_wrapper(pytester.path)}"
        users = 4
        duration = "5s"
        min_requests = 3
        p95_below_ms = 2000
        """,
        locustfile,
    )
    result = run_stage(pytester, "load", "-v", *xdist)
    names = ["GET /api/products", "GET /api/products/[id]", "GET /", "GET /health"]
    _outcomes(result, passed=2 + len(names))
    assert _starts(root) == 1, "Locust must run once per session"
    cases = _cases(root)
    assert set(cases) == {"(locust run)", "(other endpoints)", *names}
    report = "reports/load/perf/perf.html"
    assert (root / report).is_file()
    assert "<html" in (root / report).read_text()[:2000].lower()
    for name in names:
        properties = cases[name].properties
        assert properties["perf_report"] == report
        assert int(properties["perf_requests"]) >= 3
        assert float(properties["perf_error_rate"]) == 0.0
        assert float(properties["perf_p95_ms"]) > 0
    assert cases["GET /api/products"].file == "perf/locustfile.py"
    status = cases["(locust run)"].properties
    assert status["perf_report"] == report
    assert int(status["perf_endpoints"]) == len(names)


def test_slow_endpoint_fails_with_its_measured_p95(
    pytester: pytest.Pytester, faulty: str, xdist: list[str]
) -> None:
    root = _faulty_project(
        pytester,
        faulty,
        """
        "GET /slow" = { p95_below_ms = 200 }
        "GET /broken" = { error_rate_below = 1.0 }
        """,
    )
    result = run_stage(pytester, "load", "-v", *xdist)
    cases = _cases(root)
    message = cases["GET /slow"].failure()
    measured = re.search(r"p95 = (\d+) ms, limit < 200 ms", message)
    assert measured, message
    assert float(cases["GET /slow"].properties["perf_p95_ms"]) == float(measured.group(1))
    assert int(measured.group(1)) >= 300  # the route sleeps 300 ms; Locust rounds
    for name in ("(locust run)", "GET /fast", "(other endpoints)"):
        assert cases[name].outcome != "failure", name
    # Every request to /broken failed, but its limit allows 100 %: only ">= 1.0" fails.
    assert "100.0% of requests failed" in cases["GET /broken"].failure()
    assert cases["(other endpoints)"].properties["perf_other_endpoints"] == "1"
    assert result.ret == 1


def test_endpoint_with_errors_and_too_few_requests_fail(
    pytester: pytest.Pytester, faulty: str
) -> None:
    root = _faulty_project(
        pytester,
        faulty,
        """
        "GET /fast" = { min_requests = 1000000 }
        "GET /never" = {}
        """,
    )
    result = run_stage(pytester, "load", "-rA")
    cases = _cases(root)
    broken = cases["GET /broken"].failure()
    assert "100.0% of requests failed" in broken
    assert "limit < 1.0%" in broken
    assert "HTTPError('500 Server Error" in broken
    fast = cases["GET /fast"].failure()
    assert "insufficient evidence" in fast
    assert "min_requests = 1000000" in fast
    never = cases["GET /never"].failure()
    assert "Locust recorded no request" in never
    assert cases["GET /slow"].outcome != "failure"
    assert cases["(locust run)"].outcome != "failure"
    _outcomes(result, passed=3, failed=3)


def test_missing_locustfile_fails_the_status_item(
    pytester: pytest.Pytester, shop: str, xdist: list[str]
) -> None:
    root = _perf_project(
        pytester, f'host = "{shop}"\nlocustfile = "perf/nope.py"\n', locustfile=None
    )
    result = run_stage(pytester, "load", *xdist)
    _outcomes(result, failed=1, skipped=1)
    message = _cases(root)["(locust run)"].failure()
    assert "locustfile perf/nope.py does not exist" in message
    assert "[tool.pytest-release.gates.perf]" in message


def test_refused_target_fails_the_status_item_and_skips_endpoints(
    pytester: pytest.Pytester,
) -> None:
    port = _free_port()
    root = _perf_project(
        pytester,
        f'host = "http://127.0.0.1:{port}"\nlocustfile = "perf/locustfile.py"\n',
        FAULTY_LOCUSTFILE,
    )
    result = run_stage(pytester, "load")
    _outcomes(result, failed=1, skipped=4)
    message = _cases(root)["(locust run)"].failure()
    assert f"the target http://127.0.0.1:{port} refused the connection" in message
    assert "Locust was not started" in message


@pytest.mark.parametrize(
    ("gate", "locustfile", "expected"),
    [
        pytest.param(
            'locust = "no-such-locust"',
            FAULTY_LOCUSTFILE,
            "Locust is not installed: locust = 'no-such-locust'",
            id="not-installed",
        ),
        pytest.param(
            f'locust = "{LOCUST}"',
            "import no_such_module_for_locust\n",
            "without writing its statistics",
            id="broken-locustfile",
        ),
        pytest.param(
            f'locust = "{LOCUST}"',
            "from locust import HttpUser, task, constant\n"
            "class U(HttpUser):\n    wait_time = constant(0.05)\n"
            "    @task\n    def t(self):\n        raise RuntimeError('task bug')\n",
            "raised 1 kind(s) of exception",
            id="task-raises",
        ),
    ],
)
def test_locust_problems_fail_the_status_item(
    pytester: pytest.Pytester, faulty: str, gate: str, locustfile: str, expected: str
) -> None:
    root = _perf_project(
        pytester,
        f'host = "{faulty}"\nlocustfile = "perf/locustfile.py"\nduration = "3s"\n{gate}\n',
        locustfile,
    )
    result = run_stage(pytester, "load")
    assert result.ret == 1
    cases = _cases(root)
    assert expected in cases["(locust run)"].failure()
    for name, case in cases.items():
        if name != "(locust run)":
            assert case.outcome == "skipped", name


def test_bad_configuration_names_the_key(pytester: pytest.Pytester) -> None:
    _perf_project(pytester, 'host = "127.0.0.1:8080"\nargs = ["--csv=x"]\n', None)
    result = run_stage(pytester, "load")
    assert result.ret == 4
    err = result.stderr.str()
    assert "host" in err
    assert "must be an http(s) base URL" in err
    assert "'--csv' is set by the gate" in err


def test_endpoints_read_from_a_locustfile(tmp_path: Path) -> None:
    path = tmp_path / "locustfile.py"
    path.write_text(
        "class U:\n"
        "    def t(self):\n"
        '        self.client.get("/a")\n'
        '        self.client.post("/orders", json={}, name="place order")\n'
        '        self.client.request("patch", "http://x.test/b?q=1")\n'
        '        self.client.get(f"/p/{self.n}", name="/p/[n]")\n'
        '        self.client.get(f"/dyn/{self.n}")\n'
        '        self.client.get("/a")\n'
        '        other.get("/not-a-client")\n'
    )
    found = [(e.key, e.line) for e in endpoints_in(path)]
    assert found == [
        ("GET /a", 3),
        ("POST place order", 4),
        ("PATCH /b?q=1", 5),
        ("GET /p/[n]", 6),
    ]


def test_locust_is_installed_beside_python() -> None:
    assert LOCUST.is_file() or shutil.which("locust"), "pip install 'pytest-release[perf]'"


def test_an_empty_path_key_is_refused_naming_the_key() -> None:
    from pydantic import ValidationError

    from pytest_release.gates.perf.config import PerfGateConfig

    with pytest.raises(ValidationError, match="locust is empty; remove the key or name a file"):
        PerfGateConfig.model_validate(
            {"kind": "perf", "host": "http://127.0.0.1:1", "locustfile": "l.py", "locust": " "}
        )

"""The e2e gate: pytest-playwright with Debian's Chromium against a real page on 127.0.0.1.

The page is served by a stdlib HTTP server in this process; the stage runs in a
subprocess (pytester) whose e2e tests open it through the gate's ``base_url``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_release.config.release import load_release_config
from pytest_release.errors import ReleaseConfigError
from pytest_release.gates import builtin_gate_kinds
from pytest_release.gates.e2e.config import E2EGateConfig
from tests.support.http_server import QuietHandler, address, start_server, stop_server
from tests.support.junit import cases_by_name
from tests.support.spine import project, run_stage

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = (
    '["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", '
    '"--disable-component-update"]'
)
PAGE = b"""<!doctype html>
<html><head><title>e2e test page</title></head>
<body>
  <p id="status">idle</p>
  <button id="go" onclick="document.getElementById('status').textContent = 'clicked'">Go</button>
</body></html>
"""
E2E_TESTS = """
from playwright.sync_api import Page, expect

def test_click_the_button(page: Page) -> None:
    page.goto("/")
    page.click("#go")
    expect(page.locator("#status")).to_have_text("clicked")

def test_expects_what_never_happens(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#status")).to_have_text("never", timeout=300)
"""


class PageServer:
    """The test page on 127.0.0.1:<free port>; remembers the paths it served."""

    def __init__(self) -> None:
        paths: list[str] = []

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                found = self.path == "/"
                self.answer(200 if found else 404, PAGE if found else b"not found", "text/html")

        self.paths = paths
        self.handler = Handler

    def __enter__(self) -> PageServer:
        self.server = start_server(self.handler)
        self.url = f"http://{address(self.server)}"
        return self

    def __exit__(self, *exc: object) -> None:
        stop_server(self.server)


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    with PageServer() as server:
        yield server


def e2e_project(pytester: pytest.Pytester, base_url: str, *, executable: str = CHROMIUM) -> None:
    project(
        pytester,
        f"""
        [gates.e2e]
        kind = "e2e"
        base_url = "{base_url}"
        executable_path = "{executable}"
        args = {ARGS}
        paths = ["tests/e2e/*"]

        [stages.web]
        gates = ["e2e"]

        [stages.web-again]
        gates = ["e2e"]
        """,
        **{"tests/e2e/test_page.py": E2E_TESTS},
    )


def test_e2e_tests_use_base_url_and_keep_failure_artifacts_per_stage(
    pytester: pytest.Pytester, page_server: PageServer, xdist: list[str]
) -> None:
    e2e_project(pytester, page_server.url)
    result = run_stage(pytester, "web", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    # page.goto("/") reached the page through the configured base_url.
    assert page_server.paths.count("/") == 2

    out = pytester.path / "reports" / "web" / "e2e"
    failed_dir = out / "tests-e2e-test-page-py-test-expects-what-never-happens-chromium"
    assert sorted(p.name for p in failed_dir.iterdir()) == ["test-failed-1.png", "trace.zip"]
    assert (failed_dir / "test-failed-1.png").read_bytes().startswith(b"\x89PNG")
    # Only the failed test keeps artifacts (only-on-failure / retain-on-failure).
    assert [p.name for p in out.iterdir()] == [failed_dir.name]

    cases = cases_by_name(pytester.path / "reports" / "web.xml")
    attachments = sorted(cases["test_expects_what_never_happens[chromium]"].values("attachment"))
    relative = failed_dir.relative_to(pytester.path).as_posix()
    assert attachments == [f"{relative}/test-failed-1.png", f"{relative}/trace.zip"]
    assert not cases["test_click_the_button[chromium]"].values("attachment")
    result.stdout.fnmatch_lines(
        [
            "*- e2e artifacts (screenshots, traces) -*",
            f"*test_expects_what_never_happens*: {relative}/test-failed-1.png",
        ]
    )

    if xdist:
        return
    # Another stage writes to its own directory and leaves this one alone.
    again = run_stage(pytester, "web-again", "-k", "never")
    again.assert_outcomes(failed=1, deselected=1)
    assert (failed_dir / "trace.zip").is_file()
    again_dir = pytester.path / "reports" / "web-again" / "e2e" / failed_dir.name
    assert sorted(p.name for p in again_dir.iterdir()) == ["test-failed-1.png", "trace.zip"]


def test_base_url_option_beats_the_gate_config(
    pytester: pytest.Pytester, page_server: PageServer
) -> None:
    with PageServer() as decoy:
        e2e_project(pytester, decoy.url)
        result = run_stage(pytester, "web", "-k", "click", f"--base-url={page_server.url}")
        result.assert_outcomes(passed=1, deselected=1)
        assert decoy.paths == []
    assert [p for p in page_server.paths if p == "/"] == ["/"]


def test_missing_browser_executable_fails_every_e2e_test(
    pytester: pytest.Pytester, page_server: PageServer
) -> None:
    e2e_project(pytester, page_server.url, executable="/nonexistent/chromium")
    result = run_stage(pytester, "web")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*e2e gate 'e2e': executable_path = '/nonexistent/chromium' is not an executable "
            "file; install the browser (e.g. `apt-get install chromium`)*"
        ]
    )
    assert page_server.paths == []


def test_without_pytest_playwright_the_gate_fails_with_the_install_hint(
    pytester: pytest.Pytester, page_server: PageServer
) -> None:
    e2e_project(pytester, page_server.url)
    result = run_stage(pytester, "web", "-p", "no:playwright")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*the e2e gate needs pytest-playwright, which is not installed: pip install*"]
    )


def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ReleaseConfigError) as excinfo:
        load_release_config(
            {"gates": {"web": {"kind": "e2e", "base_url": "127.0.0.1:8000"}}},
            "pyproject.toml",
            builtin_gate_kinds(),
        )
    assert "gates.web.base_url = '127.0.0.1:8000'" in str(excinfo.value)
    assert "must be an absolute http:// or https:// URL" in str(excinfo.value)


def test_artifacts_dir_is_reports_stage_e2e(tmp_path: Path) -> None:
    from pytest_release.gates.e2e.plugin import output_dir

    class Run:
        rootdir = tmp_path
        reports_dir = tmp_path / "out"
        stage = "uat"

    assert output_dir(Run(), E2EGateConfig()) == tmp_path / "out" / "uat" / "e2e"  # type: ignore[arg-type]
    assert output_dir(Run(), E2EGateConfig(output="art")) == tmp_path / "art"  # type: ignore[arg-type]

"""The ``e2e`` gate: pytest-playwright wired to the stage.

The gate's tests are ordinary pytest-playwright tests (``page`` fixture) that join it
by path or marker; the gate supplies their settings::

    [tool.pytest-release.gates.e2e]
    kind = "e2e"
    base_url = "http://127.0.0.1:8000"       # --base-url (or ini base_url) wins
    executable_path = "/usr/bin/chromium"    # a system Chromium instead of a download
    args = ["--no-sandbox", "--headless", "--disable-gpu"]
    headless = true
    screenshot = "only-on-failure"           # --screenshot wins
    tracing = "retain-on-failure"            # --tracing wins
    # output = "reports/e2e"                 # default <reports-dir>/<stage>/e2e; --output wins

* ``page.goto("/")`` resolves against ``base_url``;
* the browser is launched with ``executable_path``/``args``/``headless`` (command-line
  options of pytest-playwright such as ``--headed`` still win);
* screenshots and traces of failed tests go to ``<reports-dir>/<stage>/e2e/<test>/``,
  a directory per stage (pytest-playwright empties its output directory at the start of
  a session; here only the process that owns the session does, once); each kept file
  is linked from the test's JUnit case as an ``attachment`` property and listed at the
  end of the run.  Video is not enabled: it needs Playwright's ffmpeg.

With several e2e gates in a stage the first one (in run order) supplies these
session-wide settings.  Without pytest-playwright a configured e2e gate fails with one
item that says how to install it.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.config.tables import GateConfig
from pytest_release.errors import GateCheckFailed
from pytest_release.gates.e2e.config import ATTACHMENT, KIND, PLAYWRIGHT_DEFAULTS, E2EGateConfig
from pytest_release.gates.gate_hooks import gate_kind_hooks
from pytest_release.gating.gate_node import GateItem, GateNode
from pytest_release.stage.session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.ledger.stage_run import StageRun
    from pytest_release.stage.session import StageSession


_E2E_KEYS = frozenset(set(E2EGateConfig.model_fields) - set(GateConfig.model_fields))


def _session(config: pytest.Config) -> StageSession | None:
    return get_stage_session(config)


def _e2e_gate(run: StageRun) -> tuple[str, E2EGateConfig] | None:
    """The first e2e gate of the stage: it supplies the session-wide settings."""
    for name in run.plan.order:
        gate = run.config.gates[name]
        if isinstance(gate, E2EGateConfig):
            return name, gate
    return None


def output_dir(run: StageRun, gate: E2EGateConfig) -> Path:
    if gate.output is not None:
        path = Path(gate.output)
        return path if path.is_absolute() else run.rootdir / path
    return run.reports_dir / run.stage / "e2e"


def _given(config: pytest.Config, flag: str) -> bool:
    """Whether ``flag`` was passed (command line, PYTEST_ADDOPTS or ini addopts)."""
    args = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    addopts = config.getini("addopts")
    args.extend(addopts if isinstance(addopts, list) else shlex.split(str(addopts)))
    return any(arg == flag or arg.startswith(flag + "=") for arg in args)


# -- hooks ---------------------------------------------------------------------------------
def _items(gate_node: GateNode, gate: E2EGateConfig) -> list[pytest.Item]:
    if gate_node.config.pluginmanager.hasplugin("playwright"):
        return []
    if not _E2E_KEYS & gate.model_fields_set:
        return []  # the built-in gate, not configured: nothing says this project has e2e tests
    return [MissingPlaywright.from_parent(gate_node, name="pytest-playwright")]


pytest_release_gate_kinds, pytest_release_gate_items = gate_kind_hooks(KIND, E2EGateConfig, _items)


class MissingPlaywright(GateItem):
    def runtest(self) -> None:
        raise GateCheckFailed(
            "the e2e gate needs pytest-playwright, which is not installed: "
            "pip install 'pytest-release[e2e]' (pytest-playwright, pytest-base-url); the "
            "browser comes from executable_path (e.g. apt-get install chromium) or "
            "`playwright install chromium`"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Give pytest-playwright and pytest-base-url the gate's settings where the user did
    not set them; the owner of the session empties this stage's artifacts directory."""
    config = session.config
    stage = _session(config)
    if stage is None or not config.pluginmanager.hasplugin("playwright"):
        return
    found = _e2e_gate(stage.run)
    if found is None:
        return
    _, gate = found
    option = config.option
    if gate.base_url is not None and not getattr(option, "base_url", None):
        option.base_url = gate.base_url
    if not _given(config, "--output") and option.output == PLAYWRIGHT_DEFAULTS["output"]:
        option.output = str(output_dir(stage.run, gate))
    if not _given(config, "--screenshot") and option.screenshot == "off":
        option.screenshot = gate.screenshot
    if not _given(config, "--tracing") and option.tracing == "off":
        option.tracing = gate.tracing
    if not stage.is_worker:
        shutil.rmtree(option.output, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def delete_output_dir() -> None:
    """Replaces pytest-playwright's fixture of that name, which empties ``--output`` in
    every xdist worker when its first test starts (and may delete what another worker
    already saved); the session owner empties it once in ``pytest_sessionstart``."""


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], pytestconfig: pytest.Config
) -> dict[str, Any]:
    """pytest-playwright's launch options plus the gate's (its command-line options win)."""
    stage = _session(pytestconfig)
    found = _e2e_gate(stage.run) if stage is not None else None
    if found is None:
        return browser_type_launch_args
    name, gate = found
    options: dict[str, Any] = {"headless": gate.headless}
    if gate.args:
        options["args"] = list(gate.args)
    if gate.executable_path is not None:
        executable = Path(gate.executable_path)
        if not executable.is_file() or not os.access(executable, os.X_OK):
            pytest.fail(
                f"e2e gate '{name}': executable_path = {gate.executable_path!r} is not an "
                "executable file; install the browser (e.g. `apt-get install chromium`) or "
                f"fix executable_path in [tool.pytest-release.gates.{name}]",
                pytrace=False,
            )
        options["executable_path"] = str(executable)
    return {**options, **browser_type_launch_args}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "teardown":
        _link_attachments(item, report)
    return report


def _link_attachments(item: pytest.Item, report: pytest.TestReport) -> None:
    """An ``attachment`` property (repo-relative path) per artifact pytest-playwright
    kept; JUnit readers that know the convention link them from the test case."""
    stage = _session(item.config)
    if stage is None:
        return
    invocation_dir = Path(item.config.invocation_params.dir)
    for key, value in list(report.user_properties):
        if isinstance(key, str) and key.startswith("playwright_") and isinstance(value, str):
            path = Path(value)
            absolute = path if path.is_absolute() else invocation_dir / path
            report.user_properties.append((ATTACHMENT, stage.run.relative(absolute)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the kept artifacts (the controller sees every report, also under xdist)."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == ATTACHMENT:
                    lines.append(f"{report.nodeid}: {value}")
    if lines:
        terminalreporter.write_sep("-", "e2e artifacts (screenshots, traces)")
        for line in sorted(set(lines)):
            terminalreporter.write_line(line)

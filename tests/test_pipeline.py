"""The README's first command: the reference pipeline end to end on this machine.

Runs ``scripts/pipeline.py`` (real Docker, registry, HAProxy, Chromium, newman) in a
copy of the repository's examples, suites and scripts, once green and once with a
deliberately bad releases: one staging stops (errors), one canary-1 rolls back (latency).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.junit import cases_by_name

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pipeline_copy(tmp_path: Path, docker_client: Any, base_image: str) -> Iterator[Path]:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("examples", "suites", "scripts"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "conftest.py"):  # the lint tools see the same project
        shutil.copy(ROOT / name, copy)
    if (ROOT / "node_modules").is_dir():
        (copy / "node_modules").symlink_to(ROOT / "node_modules")
    try:
        yield copy
    finally:
        subprocess.run(
            [sys.executable, "-m", "pytest_release.canary.teardown", str(copy)],
            capture_output=True,
            check=False,
        )
        ledger = copy / ".pytest-release" / "ledger.json"
        releases = (
            {r["release_id"] for r in json.loads(ledger.read_text())["runs"]}
            if (ledger.exists())
            else set()
        )
        for release in releases:
            for image in docker_client.images.list(
                filters={"label": f"pytest-release.release={release}"}
            ):
                docker_client.images.remove(image.id, force=True)


def _pipeline(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/pipeline.py", *args],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
    )


def _explain(copy: Path, run: subprocess.CompletedProcess[str]) -> str:
    """The pipeline's output and the failures of its stage logs, for the assertion."""
    parts = [run.stdout, run.stderr]
    for log in sorted((copy / "reports" / "demo").glob("*.log")):
        text = log.read_text(errors="replace")
        if "FAILURES" in text or "ERROR" in text:
            parts.append(f"--- {log.name} ---\n{text[text.find('FAILURES') - 40 :][-6000:]}")
    return "\n".join(parts)


def _outcomes(copy: Path, release: str) -> dict[str, str]:
    runs = json.loads((copy / ".pytest-release" / "ledger.json").read_text())["runs"]
    return {r["stage"]: r["outcome"] for r in runs if r["release_id"] == release}


def _release(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("release ") and ": image " in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no release line in:\n{output}")


def test_pipeline_runs_green_then_bad_releases_are_stopped(pipeline_copy: Path) -> None:
    good = _pipeline(pipeline_copy)
    assert good.returncode == 0, _explain(pipeline_copy, good)
    release = _release(good.stdout)
    stages = ["uat", "build", "staging", "canary-1", "canary-2", "canary-3", "smoke"]
    assert _outcomes(pipeline_copy, release) == dict.fromkeys(stages, "passed")
    assert "pipeline summary for release" in good.stdout
    assert "health@" in good.stdout
    for stage in stages:
        assert (pipeline_copy / "reports" / f"{stage}.xml").is_file()
    staging_cases = cases_by_name(pipeline_copy / "reports" / "staging.xml")
    assert staging_cases["test_repeated_requests_all_succeed"].outcome == "passed"
    assert staging_cases["promote:main"].outcome == "passed"

    # 20 % errors: staging stops it; production never sees it.
    errors = _pipeline(pipeline_copy, "--bad=staging")
    assert errors.returncode == 0, _explain(pipeline_copy, errors)
    outcomes = _outcomes(pipeline_copy, _release(errors.stdout))
    assert outcomes["staging"] == "rolled-back"
    assert "canary-1" not in outcomes
    assert "the bad release was rolled back automatically in staging" in errors.stdout

    # +800 ms: functional checks pass on staging, canary-1's judge rolls it back.
    slow = _pipeline(pipeline_copy, "--bad")
    assert slow.returncode == 0, _explain(pipeline_copy, slow)
    outcomes = _outcomes(pipeline_copy, _release(slow.stdout))
    assert outcomes["staging"] == "passed"
    assert outcomes["canary-1"] == "rolled-back"
    assert "canary-2" not in outcomes
    assert "the bad release was rolled back automatically in canary-1" in slow.stdout
    assert "canary p95 latency" in slow.stdout


def test_pipeline_profiles_run_end_to_end(pipeline_copy: Path) -> None:
    """docs/profiles.md's profiles through the pipeline with demo holds (issue 30, item 3):
    seed-002's four canary steps and blue/green's deploy, switch, smoke and finish."""
    seed = _pipeline(pipeline_copy, "--profile", "seed-002")
    assert seed.returncode == 0, _explain(pipeline_copy, seed)
    stages = ["uat", "build", "staging", "canary-1", "canary-2", "canary-3", "canary-4", "smoke"]
    assert _outcomes(pipeline_copy, _release(seed.stdout)) == dict.fromkeys(stages, "passed")
    assert "profile seed-002: uat -> build" in seed.stdout
    assert "left running:\n  production  HAProxy http://127.0.0.1:18000 and its" in seed.stdout
    assert "  registry    127.0.0.1:5000" in seed.stdout

    bluegreen = _pipeline(pipeline_copy, "--profile", "bluegreen")
    assert bluegreen.returncode == 0, _explain(pipeline_copy, bluegreen)
    stages = ["uat", "build", "staging", "bluegreen-deploy", "bluegreen-switch", "smoke"]
    stages.append("bluegreen-finish")
    outcomes = _outcomes(pipeline_copy, _release(bluegreen.stdout))
    assert outcomes == dict.fromkeys(stages, "passed")


# The pipeline's own messages (issue 30: items 1 and 3), without its set-up: the argument
# checks run before it, and the summary reads a real stage's ledger entry and JUnit report.

PIPELINE_SCRIPT = ROOT / "scripts" / "pipeline.py"


def _pipeline_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("release_pipeline_script", PIPELINE_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("args", "problem", "named"),
    [
        (["--stages", "uat,canary"], "unknown stage 'canary'", "uat, build, staging, canary-1"),
        (["--stages", ","], "empty", "uat, build, staging, canary-1"),
        (
            ["--platform", "kubernetes", "--stages", "uat"],
            "unknown stage 'uat'",
            "the stages on kubernetes are canary-1, canary-2, canary-3, smoke",
        ),
        (
            ["--profile", "bluegreen", "--stages", "uat,canary-1"],
            "unknown stage 'canary-1'",
            "are uat, build, staging, bluegreen-deploy, bluegreen-switch, smoke, bluegreen-finish",
        ),
        (["--profile", "seed-002", "--bad"], "--profile seed-002 runs the good release", "--bad"),
    ],
    ids=["unknown", "empty", "kubernetes", "profile", "profile-bad"],
)
def test_pipeline_stages_unknown_name_is_an_error_naming_the_stages(
    args: list[str], problem: str, named: str
) -> None:
    run = subprocess.run(
        [sys.executable, str(PIPELINE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert problem in run.stderr, run.stderr
    assert named in run.stderr, run.stderr
    assert "set-up" not in run.stdout  # refused before anything started


def test_pipeline_summary_gives_the_failing_check_partial_mark_and_venv_hints(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.spine import project, run_stage

    project(
        pytester,
        "[gates.unit]\npaths = ['tests/unit/*']\n[stages.check]\ngates = ['unit']\n",
        **{
            "tests/unit/test_shop.py": "def test_ok(): pass\n"
            "def test_price():\n    assert 2 + 2 == 5, 'price is off by one\\nsecond line'\n"
        },
    )
    assert run_stage(pytester, "check", release="r1").ret == 1
    pipeline = _pipeline_module()
    venv_python = pytester.path / ".venv" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(venv_python))
    runs = [pipeline.StageRun("check", 1, 2.0, pytester.path / "check.log")]
    capsys.readouterr()
    pipeline.summary(
        runs,
        "r1",
        pytester.path / ".pytest-release" / "ledger.json",
        pytester.path / "reports",
        partial=["check"],
    )
    out = capsys.readouterr().out
    assert "pipeline summary for release r1 (partial: only check)" in out
    assert "    reason: test_price: AssertionError: price is off by one" in out
    assert "second line" not in out
    assert "status: .venv/bin/python -m pytest --release-status --release-id=r1" in out
    assert "stop the platform: .venv/bin/python -m pytest_release.canary.teardown" in out


REGISTRY_SCRIPT = ROOT / "scripts" / "start-registry.sh"


def _start_registry(port: int, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REGISTRY_SCRIPT), str(port)],
        env={**os.environ, "REGISTRY_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_registry_set_up_refuses_a_port_taken_by_something_else(tmp_path: Path) -> None:
    """Whatever answers 200 on the registry's port is not taken for a registry (issue 30,
    item 8): the release images would go there."""
    import http.server
    import threading

    from tests.test_gate_docker import free_port

    class AnswersEverything(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), AnswersEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run = _start_registry(port, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"127.0.0.1:{port} is taken by something that is not a registry" in run.stderr
    assert not (tmp_path / "registry.pid").exists()


def test_registry_set_up_starts_one_then_says_it_reuses_it(tmp_path: Path) -> None:
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed: apt-get install -y docker-registry")
    from tests.test_gate_docker import free_port

    port = free_port()
    started = _start_registry(port, tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"127.0.0.1:{port}"
        assert f"started docker-registry on 127.0.0.1:{port}" in started.stderr
        again = _start_registry(port, tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"reusing the registry that already answers on 127.0.0.1:{port}" in again.stderr
    finally:
        pid_file = tmp_path / "registry.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def test_pipeline_lists_what_it_leaves_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """The closing lines name the routers that still answer, and the registry and dockerd
    with whether set-up started them (issue 30, item 4: leftovers announced)."""
    import socket

    pipeline = _pipeline_module()
    with socket.socket() as production, socket.socket() as gone:
        production.bind(("127.0.0.1", 0))
        production.listen()
        gone.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        monkeypatch.setattr(
            pipeline, "ROUTER_URL", f"http://127.0.0.1:{production.getsockname()[1]}"
        )
        monkeypatch.setattr(pipeline, "STAGING_URL", f"http://127.0.0.1:{gone.getsockname()[1]}")
        lines = pipeline.leftovers(
            {
                "registry": "started docker-registry on 127.0.0.1:5000 (pid 4242, data in /x)",
                "docker": "start-docker: dockerd already answers on /var/run/docker.sock",
            }
        )
    text = "\n".join(lines)
    assert lines[0] == "left running:"
    assert f"production  HAProxy {pipeline.ROUTER_URL} and its replicas" in text
    assert "staging" not in text
    assert "registry    127.0.0.1:5000, started by set-up: stop it with kill 4242" in text
    assert "dockerd     already running before (not stopped by us)" in text

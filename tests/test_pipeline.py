"""The README's first command: the reference pipeline end to end on this machine.

Runs ``scripts/pipeline.py`` (real Docker, registry, HAProxy, Chromium, newman) in a
copy of the repository's examples, suites and scripts, once green and once with a
deliberately bad releases: one staging stops (errors), one canary-1 rolls back (latency).
Each copy runs on ports of its own (the pipeline's ``PIPELINE_*_PORT`` variables) with a
registry of its own, so the two whole-pipeline tests run at the same time under xdist.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.junit import cases_by_name
from tests.support.spine import run_teardown
from tests.workflow_support import pipeline_script

ROOT = Path(__file__).resolve().parent.parent

# The ports of a pipeline copy: below the range routers pick their own port from
# (keepable_port: 20000-31999) and the kernel's ephemeral range (32768-60999), so nothing
# that picks a port at random takes one while the copy's pipeline does not listen on it
# (between two stages); below the demo's defaults (18000, 18080, 18081, 18100) too.  Each
# xdist worker picks from its own share: two copies of one session never pick the same.
COPY_PORTS = range(12000, 18000)


@dataclass(frozen=True)
class PipelineCopy:
    root: Path
    ports: dict[str, int]  # by scripts/pipeline.py's variable, e.g. PIPELINE_PRODUCTION_PORT

    def address(self, variable: str) -> str:
        return f"127.0.0.1:{self.ports[variable]}"

    @property
    def production(self) -> str:
        return f"http://{self.address('PIPELINE_PRODUCTION_PORT')}"

    @property
    def staging(self) -> str:
        return f"http://{self.address('PIPELINE_STAGING_PORT')}"

    @property
    def registry(self) -> str:
        return self.address("PIPELINE_REGISTRY_PORT")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def copy_ports(names: list[str]) -> dict[str, int]:
    """A free port for each of ``names``, from this xdist worker's share of COPY_PORTS."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker) % workers if worker.isdigit() else 0
    size = len(COPY_PORTS) // workers
    share = COPY_PORTS[index * size : (index + 1) * size]
    free = (port for port in random.sample(share, len(share)) if _bindable(port))
    return dict(zip(names, free, strict=False))


@pytest.fixture
def pipeline_copy(tmp_path: Path, docker_client: Any, base_image: str) -> Iterator[PipelineCopy]:
    names = list(pipeline_script().PORT_DEFAULTS)
    ports = copy_ports(names)
    assert len(ports) == len(names), f"no free ports left in {COPY_PORTS}"
    yield from _pipeline_copy(tmp_path, docker_client, ports)


def _pipeline_copy(
    tmp_path: Path, docker_client: Any, ports: dict[str, int]
) -> Iterator[PipelineCopy]:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("examples", "suites", "scripts"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "conftest.py"):  # the lint tools see the same project
        shutil.copy(ROOT / name, copy)
    if (ROOT / "node_modules").is_dir():
        (copy / "node_modules").symlink_to(ROOT / "node_modules")
    pipeline = PipelineCopy(copy, ports)
    try:
        yield pipeline
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
        # This copy's images only, by their references: another copy's release ids can be
        # the same (no git in the copies), and the build cache can give two copies' images
        # the same id; a reference removed leaves the image to the other copy's.
        for release in releases:
            for image in docker_client.images.list(
                filters={"label": f"pytest-release.release={release}"}
            ):
                for tag in image.tags:
                    if tag.startswith(f"{pipeline.registry}/"):
                        docker_client.images.remove(tag, force=True)


def _pipeline(copy: PipelineCopy, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update({name: str(port) for name, port in copy.ports.items()})
    env["REGISTRY_DIR"] = str(copy.root / ".pytest-release" / "registry")  # its data too
    return subprocess.run(
        [sys.executable, "scripts/pipeline.py", *args],
        cwd=copy.root,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env=env,
    )


def _explain(copy: PipelineCopy, run: subprocess.CompletedProcess[str]) -> str:
    """The pipeline's output and the failures of its stage logs, for the assertion."""
    parts = [run.stdout, run.stderr]
    for log in sorted((copy.root / "reports" / "demo").glob("*.log")):
        text = log.read_text(errors="replace")
        if "FAILURES" in text or "ERROR" in text:
            parts.append(f"--- {log.name} ---\n{text[text.find('FAILURES') - 40 :][-6000:]}")
    return "\n".join(parts)


def _outcomes(copy: PipelineCopy, release: str) -> dict[str, str]:
    runs = json.loads((copy.root / ".pytest-release" / "ledger.json").read_text())["runs"]
    return {r["stage"]: r["outcome"] for r in runs if r["release_id"] == release}


def _release(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("release ") and ": image " in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no release line in:\n{output}")


@pytest.mark.heavy(315)
def test_pipeline_runs_green_then_bad_releases_are_stopped(pipeline_copy: PipelineCopy) -> None:
    good = _pipeline(pipeline_copy)
    assert good.returncode == 0, _explain(pipeline_copy, good)
    release = _release(good.stdout)
    stages = ["uat", "build", "staging", "canary-1", "canary-2", "canary-3", "smoke"]
    assert _outcomes(pipeline_copy, release) == dict.fromkeys(stages, "passed")
    assert "pipeline summary for release" in good.stdout
    assert "health@" in good.stdout
    assert "\n    canary-1: canary hold " in good.stdout  # the hold, while it runs
    for stage in stages:
        assert (pipeline_copy.root / "reports" / f"{stage}.xml").is_file()
    assert "  staging    passed" in good.stdout
    assert "staging-rollout passed" in good.stdout  # staging's gate, not 'canary'
    assert f"serves release-{release.rsplit('-', 1)[1]} (this release)" in good.stdout
    staging_cases = cases_by_name(pipeline_copy.root / "reports" / "staging.xml")
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
    # Staging keeps the bad release it checked, and the summary says so (issue 30, item 2).
    version = f"release-{_release(slow.stdout).rsplit('-', 1)[1]}"
    assert (
        f"staging (HAProxy): {pipeline_copy.staging} serves {version}: this bad release, "
        "which passed staging's checks" in slow.stdout
    )
    assert f"production (HAProxy): {pipeline_copy.production} serves {version}" not in slow.stdout


@pytest.mark.heavy(234)
def test_pipeline_profiles_run_end_to_end(pipeline_copy: PipelineCopy) -> None:
    """docs/profiles.md's profiles through the pipeline with demo holds (issue 30, item 3):
    seed-002's four canary steps and blue/green's deploy, switch, smoke and finish."""
    seed = _pipeline(pipeline_copy, "--profile", "seed-002")
    assert seed.returncode == 0, _explain(pipeline_copy, seed)
    stages = ["uat", "build", "staging", "canary-1", "canary-2", "canary-3", "canary-4", "smoke"]
    assert _outcomes(pipeline_copy, _release(seed.stdout)) == dict.fromkeys(stages, "passed")
    assert "profile seed-002: uat -> build" in seed.stdout
    production = f"left running:\n  production  HAProxy {pipeline_copy.production} and its"
    assert production in seed.stdout
    left_running = seed.stdout.split("left running:", 1)[1].splitlines()
    (registry,) = [line for line in left_running if line.startswith("  registry ")]
    assert pipeline_copy.registry in registry  # started by the pipeline, or running before

    bluegreen = _pipeline(pipeline_copy, "--profile", "bluegreen")
    assert bluegreen.returncode == 0, _explain(pipeline_copy, bluegreen)
    stages = ["uat", "build", "staging", "bluegreen-deploy", "bluegreen-switch", "smoke"]
    stages.append("bluegreen-finish")
    outcomes = _outcomes(pipeline_copy, _release(bluegreen.stdout))
    assert outcomes == dict.fromkeys(stages, "passed")


# The pipeline's own messages (issue 30: items 1 and 3), without its set-up: the argument
# checks run before it, and the summary reads a real stage's ledger entry and JUnit report.

PIPELINE_SCRIPT = ROOT / "scripts" / "pipeline.py"


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


def test_pipeline_ports_move_with_their_variables_and_default_to_the_demos(
    tmp_path: Path,
) -> None:
    """``PIPELINE_*_PORT`` (what lets tests/test_pipeline.py run two pipelines at once):
    unset, the demo's ports and no layer; set, a layer that moves every port the suites
    name (uat's container, which e2e and newman call, build's, both routers and staging's
    SHOP_URL); a value that is not a port, or one port twice, is a usage error before
    set-up."""
    from pytest_release.canary.routers.haproxy.config import HAProxyConfig
    from pytest_release.gates.canary.config import CanaryGateConfig
    from pytest_release.gates.docker.config import DockerGateConfig
    from pytest_release.gates.e2e.config import E2EGateConfig
    from pytest_release.gates.newman.config import NewmanGateConfig
    from pytest_release.workflow.workflow import load

    pipeline = pipeline_script()
    ports, problems = pipeline.pipeline_ports({})
    assert (ports, problems) == (pipeline.PORT_DEFAULTS, [])
    assert ports["PIPELINE_REGISTRY_PORT"] == 5000
    assert ports["PIPELINE_PRODUCTION_PORT"] == 18000
    assert ports["PIPELINE_STAGING_PORT"] == 18100
    assert pipeline.ports_layer(tmp_path / "ports.toml", ports) is None
    assert not (tmp_path / "ports.toml").exists()

    moved = dict(zip(pipeline.PORT_DEFAULTS, (15001, 15002, 15003, 15004, 15005), strict=True))
    assert pipeline.pipeline_ports({k: str(v) for k, v in moved.items()}) == (moved, [])
    layer = pipeline.ports_layer(tmp_path / "ports.toml", moved)
    assert layer is not None
    shutil.copytree(ROOT / "suites", tmp_path / "suites")
    config = load(["suites/release.toml", "suites/demo.toml", "ports.toml"], tmp_path)
    uat, e2e, newman = config.gates["docker"], config.gates["e2e"], config.gates["newman"]
    build = config.gates["build"]
    production = config.for_stage("canary-1").gates["canary"]
    staging = config.for_stage("staging").gates["canary"]
    assert isinstance(uat, DockerGateConfig)
    assert isinstance(build, DockerGateConfig)
    assert isinstance(e2e, E2EGateConfig)
    assert isinstance(newman, NewmanGateConfig)
    assert isinstance(production, CanaryGateConfig)
    assert isinstance(staging, CanaryGateConfig)
    assert (uat.port, uat.env) == (15004, {"PORT": "15004", "SHOP_ENV": "uat"})  # merged
    assert e2e.base_url == "http://127.0.0.1:15004"
    assert newman.env_vars == {"baseUrl": "http://127.0.0.1:15004"}
    assert (build.port, build.env) == (15005, {"PORT": "15005"})
    assert isinstance(production.router, HAProxyConfig)
    assert production.router.port == 15002
    assert isinstance(staging.router, HAProxyConfig)
    assert staging.router.port == 15003
    assert config.environments["staging"].env["SHOP_URL"] == "http://127.0.0.1:15003"

    run = subprocess.run(
        [sys.executable, str(PIPELINE_SCRIPT), "--stages", "uat"],
        env={**os.environ, "PIPELINE_UAT_PORT": "80a", "PIPELINE_BUILD_PORT": "18000"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "PIPELINE_UAT_PORT='80a' is not a port (1-65535)" in run.stderr
    assert "PIPELINE_BUILD_PORT and PIPELINE_PRODUCTION_PORT are both 18000" in run.stderr
    assert "set-up" not in run.stdout


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
    pipeline = pipeline_script()
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
    assert "stop all of it: .venv/bin/python -m pytest_release.canary.teardown" in out


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


def _standin_dockerd(bin_dir: Path) -> subprocess.Popen[bytes]:
    """A stand-in for a dockerd that set-up started, named as such: a process called
    ``dockerd`` with a child called ``containerd`` (a second real Docker daemon cannot run
    beside this machine's, which is the one that must survive)."""
    bin_dir.mkdir()
    (bin_dir / "containerd").symlink_to(shutil.which("sleep") or "/bin/sleep")
    dockerd = bin_dir / "dockerd"
    dockerd.write_text('#!/bin/bash\n"$(dirname "$0")/containerd" 600 &\nwait\n')
    dockerd.chmod(0o755)
    return subprocess.Popen([str(dockerd)], start_new_session=True)


def test_teardown_stops_what_the_pipeline_started_and_only_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_client: Any
) -> None:
    """Issue 30, item 4: set-up records the daemons it starts (by PID and start time) and
    the teardown ends exactly those, after the platforms; a registry and the Docker daemon
    that were running before the pipeline are left running.  The closing lines say which
    is which and give the one command that stops all of it (set-up starts dockerd, then
    the registry: the teardown ends them the other way round)."""
    import time

    from pytest_release.canary.started_processes import children_named
    from pytest_release.system.processes import ProcessRef, port_open
    from tests.test_gate_docker import free_port

    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed: apt-get install -y docker-registry")
    pipeline = pipeline_script()
    root = tmp_path / "repo"
    (root / ".pytest-release").mkdir(parents=True)
    theirs_port, ours_port = free_port(), free_port()
    theirs = _start_registry(theirs_port, tmp_path / "theirs")  # the user's, running before
    assert theirs.returncode == 0, theirs.stderr
    theirs_pid = int((tmp_path / "theirs" / "registry.pid").read_text())
    standin = _standin_dockerd(tmp_path / "bin")
    ours_pid = None
    try:
        docker = pipeline._script("start-docker.sh", fix="start dockerd")
        assert "already answers" in docker  # this machine's daemon: not ours to stop
        pipeline.record_started_daemons(root, {"docker": docker})
        deadline = time.monotonic() + 60
        while not children_named(standin.pid, "containerd") and time.monotonic() < deadline:
            time.sleep(0.05)
        (containerd,) = children_named(standin.pid, "containerd")
        pipeline.record_started_daemons(
            root, {"docker": f"start-docker: started dockerd (pid {standin.pid}), ready after 0s"}
        )

        reused = pipeline.start_registry(theirs_port, root)
        assert "reusing the registry" in reused
        monkeypatch.setenv("REGISTRY_DIR", str(tmp_path / "ours"))
        started = pipeline.start_registry(ours_port, root)
        assert f"started docker-registry on 127.0.0.1:{ours_port}" in started
        ours_pid = int((tmp_path / "ours" / "registry.pid").read_text())
        for name in ("ROUTER_URL", "STAGING_URL"):  # no router in this test
            monkeypatch.setattr(pipeline, name, f"http://127.0.0.1:{free_port()}")
        text = "\n".join(pipeline.leftovers({"registry": started, "docker": docker}, root))
        assert (
            f"  registry    docker-registry on 127.0.0.1:{ours_port}, pid {ours_pid}: started "
            "by the pipeline (the teardown stops it)" in text
        )
        assert (
            f"  dockerd     dockerd (Docker daemon, log /tmp/dockerd.log), pid {standin.pid}"
            in text
        )
        assert (
            f"  containerd  containerd of that dockerd (pid {standin.pid}), pid {containerd}"
            in text
        )
        others = "\n".join(pipeline.leftovers({"registry": reused, "docker": docker}, tmp_path))
        assert (
            "registry    127.0.0.1:5000, already running before (the teardown leaves it)" in others
        )
        assert "dockerd     already running before (the teardown leaves it)" in others
        monkeypatch.chdir(tmp_path)
        assert pipeline.teardown_command(".venv/bin/python") == (
            f".venv/bin/python -m pytest_release.canary.teardown {pipeline.ROOT}"
        )

        teardown = run_teardown(root)
        assert teardown.returncode == 0, teardown.stdout + teardown.stderr
        lines = teardown.stdout.splitlines()
        assert (
            lines[0] == f"registry: ended docker-registry on 127.0.0.1:{ours_port} (pid {ours_pid})"
        )
        assert lines[1].startswith("dockerd: ended dockerd (Docker daemon")
        assert lines[2] == (
            f"containerd: ended containerd of that dockerd (pid {standin.pid}) (pid {containerd})"
        )
        assert not port_open("127.0.0.1", ours_port)
        assert standin.wait(timeout=60) is not None
        assert not ProcessRef.of(containerd).alive()
        # What ran before the pipeline still runs: the user's registry, this machine's dockerd.
        assert ProcessRef.of(theirs_pid).alive()
        assert "reusing the registry" in _start_registry(theirs_port, tmp_path / "theirs").stderr
        assert docker_client.ping()
        again = run_teardown(root)
        assert again.stdout.startswith("nothing runs under"), again.stdout
    finally:
        for pid in (theirs_pid, ours_pid):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(standin.pid, signal.SIGKILL)
        standin.wait(timeout=60)


def test_pipeline_release_numbers_count_up_by_one_whatever_stages_ran(tmp_path: Path) -> None:
    """A run of some stages (``--stages build,staging``) took a number too: the next
    release gets the one after it, not a number already in the ledger (issue 30, item 7:
    the ids skipped from -2 to -4, and a run without uat left its number to be reused)."""
    from pytest_release.ledger.ledger import Ledger, LedgerEntry

    pipeline = pipeline_script()
    ledger_path = tmp_path / "ledger.json"
    assert pipeline.pipeline_number(ledger_path) == 1
    ledger = Ledger(ledger_path)
    for release, stage in [
        ("352cac460c7d-1", "uat"),
        ("352cac460c7d-2", "build"),  # --stages build,staging: no uat
    ]:
        entry = LedgerEntry.start(
            release_id=release, stage=stage, image=None, report=None, override_requires=None
        )
        ledger.append(entry.finish("passed", []))
    assert pipeline.pipeline_number(ledger_path) == 3
    ledger.append(  # a release id of someone's own, not the pipeline's: takes no number
        LedgerEntry.start(
            release_id="dev", stage="uat", image=None, report=None, override_requires=None
        ).finish("passed", [])
    )
    assert pipeline.pipeline_number(ledger_path) == 3
    ledger.append(
        LedgerEntry.start(
            release_id="0123456789ab-3",
            stage="uat",
            image=None,
            report=None,
            override_requires=None,
        ).finish("failed", [])
    )  # a later commit's run
    assert pipeline.pipeline_number(ledger_path) == 4


def test_pipeline_summary_says_what_production_and_staging_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 30, item 4: after ``--bad`` staging keeps the bad release (it passed staging's
    checks; canary-1 rolls back production only) and the summary says so; after a
    teardown nothing runs in production and the summary says that instead of giving a
    URL where nothing listens.  Staging here is the real shop on a free port."""
    import time
    import urllib.request

    from tests.test_gate_docker import free_port

    pipeline = pipeline_script()
    staging_port = free_port()
    shop = subprocess.Popen(
        [sys.executable, "-m", "shop"],
        cwd=ROOT / "examples" / "shop",
        env={**os.environ, "PORT": str(staging_port), "SHOP_VERSION": "release-7"},
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{staging_port}/version", timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        production = f"http://127.0.0.1:{free_port()}"  # torn down: nothing listens
        monkeypatch.setattr(pipeline, "ROUTER_URL", production)
        monkeypatch.setattr(pipeline, "STAGING_URL", f"http://127.0.0.1:{staging_port}")
        capsys.readouterr()
        pipeline.summary(
            [],
            "352cac460c7d-7",
            tmp_path / "ledger.json",
            tmp_path / "reports",
            version="release-7",
            bad=True,
        )
        out = capsys.readouterr().out
        assert (
            f"production (HAProxy): nothing answers on {production} (no release has reached "
            "production since the last teardown)" in out
        )
        assert f"production (HAProxy): {production}\n" not in out
        assert (
            f"staging (HAProxy): http://127.0.0.1:{staging_port} serves release-7: this bad "
            "release, which passed staging's checks; it stays there until the next release "
            "replaces it" in out
        )
        good = pipeline.serving_now("release-8", bad=False)
        assert good[1] == f"staging (HAProxy): http://127.0.0.1:{staging_port} serves release-7"
    finally:
        shop.terminate()
        shop.wait(timeout=60)


def test_pipeline_relays_the_hold_lines_of_the_running_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 30, item 5: a stage's output goes to its log, so the pipeline showed only
    ``canary-1 running ...`` for the whole hold.  The hold's interval lines (written by
    the stage's HoldProgress, which writes them in CI form to a log) and the reasons under
    a failed interval appear as the stage writes them; a half-written line waits."""
    import io

    from pytest_release.canary.progress import HoldProgress
    from tests.canary.test_progress import CANARY, STABLE, failing_verdict, passing_verdict

    pipeline = pipeline_script()
    log = tmp_path / "canary-1.log"
    log.write_text("$ pytest --stage=canary-1\nsuites/test_x.py ...\n")
    lines = pipeline.HoldLines(log)
    assert lines.poll() == []
    written = io.StringIO()
    progress = HoldProgress(written, hold_seconds=120, is_tty=False)
    progress.update(60, CANARY, STABLE)
    progress.interval_done(passing_verdict())
    first = written.getvalue()
    with log.open("a") as handle:
        handle.write(".." + first[:30])  # after the dots of the items before (pytest -q)
    assert lines.poll() == []  # not a whole line yet
    with log.open("a") as handle:
        handle.write(first[30:])
    assert lines.poll() == [first.rstrip("\n")]
    progress.update(120, CANARY, STABLE)
    progress.interval_done(failing_verdict())
    second = written.getvalue()[len(first) :]
    with log.open("a") as handle:
        handle.write(second + "F\n    not a reason: the hold is over\n")
    relayed = lines.poll()
    assert relayed == second.rstrip("\n").splitlines()
    assert relayed[0].endswith(
        "interval 2 12:01:00-12:02:00 UTC: fail | /health failed: canary-0 2/14 (14.3%)"
    )
    assert relayed[1].startswith("    canary error rate 10.0% > 1.0%")

    capsys.readouterr()
    running = tmp_path / "canary-2.log"
    with pipeline.relayed_progress("canary-2", running, every=0.05):
        running.write_text(f"$ pytest --stage=canary-2\n{first}")
    assert capsys.readouterr().out == f"    canary-2: {first}"


def test_pipeline_kubernetes_profile_passes_traefiks_api_to_the_router() -> None:
    """``--traefik-api`` becomes ``router.api_url`` (rollbacks then wait for Traefik to
    apply the change, not ``router.drain_delay``); without it the key is absent."""
    import argparse
    import tomllib

    from pytest_release.canary.routers.traefik.config import TraefikRouterConfig

    pipeline = pipeline_script()
    args = argparse.Namespace(
        sample_pods=True,
        router_url="http://10.0.0.2:8000",
        traefik_api="http://10.0.0.2:9000",
        namespace="shop",
    )
    profile = tomllib.loads(pipeline.kubernetes_profile(args, "/k/config"))
    router = TraefikRouterConfig.model_validate(profile["gates"]["canary"]["router"])
    assert router.api_url == "http://10.0.0.2:9000"
    assert router.url == "http://10.0.0.2:8000"
    args.traefik_api = None
    profile = tomllib.loads(pipeline.kubernetes_profile(args, "/k/config"))
    assert "api_url" not in profile["gates"]["canary"]["router"]


def test_pipeline_kubernetes_summary_says_what_traefik_serves() -> None:
    """The closing line on kubernetes asks ``--router-url``'s ``/version`` (a real server
    on 127.0.0.1 stands for Traefik), and says so when nothing answers there."""
    from tests.support.http_server import QuietHandler, start_server, stop_server

    class Shop(QuietHandler):
        def do_GET(self) -> None:
            body = json.dumps({"version": "release-7"}).encode()
            self.answer(200 if self.path == "/version" else 404, body, "application/json")

    pipeline = pipeline_script()
    server = start_server(Shop)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        line = pipeline.traefik_serving(url, "shop")
    finally:
        stop_server(server)
    assert line == f"production (Traefik): {url} serves release-7, namespace shop"
    # The server is stopped: nothing answers on its port now.
    assert pipeline.traefik_serving(url, "shop") == (
        f"production (Traefik): nothing answered on {url}/version from this machine, namespace shop"
    )
    assert pipeline.traefik_serving(None, "ns") == (
        "production (Traefik): (no --router-url), namespace ns"
    )

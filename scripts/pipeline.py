#!/usr/bin/env python3
"""Run the reference service's whole release pipeline on this machine, stage by stage.

    .venv/bin/python scripts/pipeline.py        # uat -> build -> staging -> canary-1
                                                #   -> canary-2 -> canary-3 -> smoke
    .venv/bin/python scripts/pipeline.py --bad  # a slow release (+800 ms): canary-1 rolls it back
    .venv/bin/python scripts/pipeline.py --bad=staging  # 20 % errors: stopped at staging
    .venv/bin/python scripts/pipeline.py --profile seed-002   # or bluegreen: docs/profiles.md
    .venv/bin/python scripts/pipeline.py --platform kubernetes --kubeconfig ~/.kube/config \
        --namespace shop --image REGISTRY/shop:1.1 --router-url http://traefik.example
                                                # the cluster stages on a Kubernetes cluster

Each stage is one ``pytest --stage=...`` session (the same command CI runs) with
``suites/release.toml`` and the demo profile ``suites/demo.toml`` (holds of seconds).
The script does its own set-up (Docker daemon, base image, registry on 127.0.0.1:5000,
newman, the image the main deployment starts from) and stops with the install command
when a system tool is missing. At the end it prints every stage's outcome, its gates,
the canary verdicts and where the JUnit files are.

Its ports on 127.0.0.1 are the demo's (registry 5000, production's HAProxy 18000,
staging's 18100, the uat and build stages' containers 18080 and 18081); each moves with
an environment variable, e.g. to run two pipelines at once from two copies of the
repository: ``PIPELINE_REGISTRY_PORT``, ``PIPELINE_PRODUCTION_PORT``,
``PIPELINE_STAGING_PORT``, ``PIPELINE_UAT_PORT``, ``PIPELINE_BUILD_PORT``.  When one is
set the pipeline layers ``reports/demo/ports.toml`` over the suites' configuration (the
same stages on the other ports).

Ctrl-C (or SIGTERM) reaches the running stage once, through the pipeline: the stage rolls
back and records itself, the pipeline waits for it (``PIPELINE_STOP_GRACE`` seconds, 300
by default) and exits 130 with one line saying what the ledger recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
# The demo's ports on 127.0.0.1, each moved by its environment variable (module docstring).
PORT_DEFAULTS = {
    "PIPELINE_REGISTRY_PORT": 5000,  # the registry the build stage pushes to
    "PIPELINE_PRODUCTION_PORT": 18000,  # production's HAProxy: [gates.canary.router]
    "PIPELINE_STAGING_PORT": 18100,  # staging's HAProxy: [environments.staging]
    "PIPELINE_UAT_PORT": 18080,  # uat's container ([gates.docker]; e2e and newman call it)
    "PIPELINE_BUILD_PORT": 18081,  # the build stage's container check ([gates.build])
}


def pipeline_ports(environ: Mapping[str, str]) -> tuple[dict[str, int], list[str]]:
    """The ports (by variable) from ``environ``, each variable's default when it is unset
    or empty; and one problem per variable that is set to something else than a port."""
    ports = dict(PORT_DEFAULTS)
    problems = []
    for name in PORT_DEFAULTS:
        value = environ.get(name, "").strip()
        if not value:
            continue
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            problems.append(f"{name}={value!r} is not a port (1-65535)")
            continue
        ports[name] = int(value)
    taken: dict[int, str] = {}
    for name, port in ports.items():
        if port in taken:
            problems.append(f"{name} and {taken[port]} are both {port}: each needs its own port")
        taken.setdefault(port, name)
    return ports, problems


PORTS, PORT_PROBLEMS = pipeline_ports(os.environ)
REGISTRY = f"127.0.0.1:{PORTS['PIPELINE_REGISTRY_PORT']}"
ROUTER_URL = f"http://127.0.0.1:{PORTS['PIPELINE_PRODUCTION_PORT']}"
STAGING_URL = f"http://127.0.0.1:{PORTS['PIPELINE_STAGING_PORT']}"  # [environments.staging]
STABLE_IMAGE = "local/shop:stable"
# Held while set-up starts or builds what every pipeline on this machine shares.
SET_UP_LOCK = Path(tempfile.gettempdir()) / "pytest-release-pipeline-set-up.lock"
STAGES = ["uat", "build", "staging", "canary-1", "canary-2", "canary-3", "smoke"]
# What a deliberately bad release gets baked in (--bad=<where it must be stopped>).
BAD_RELEASES = {
    "staging": ('SHOP_ERROR_RATE = "0.20"', "20 % errors", "staging"),
    "canary": ('SHOP_LATENCY_MS = "800"', "+800 ms on every request", "canary-1"),
}
# On Kubernetes: the stages that run on the cluster (uat and build run on a build machine
# and push an image the cluster can pull; pass it with --image).
KUBERNETES_STAGES = ["canary-1", "canary-2", "canary-3", "smoke"]
# --profile: a profile of docs/profiles.md layered over suites/release.toml, its stages in
# order, and the demo holds (seconds) of its stages that suites/demo.toml (canary-1 and
# canary-2) does not shorten.
PROFILES: dict[str, tuple[list[str], str]] = {
    "seed-002": (
        ["uat", "build", "staging", "canary-1", "canary-2", "canary-3", "canary-4", "smoke"],
        '[stages.canary-3.rollout]\nhold = "12s"\ninterval = "4s"\n',
    ),
    "bluegreen": (
        [
            *("uat", "build", "staging", "bluegreen-deploy", "bluegreen-switch", "smoke"),
            "bluegreen-finish",
        ],
        '[stages.bluegreen-deploy.rollout]\nhold = "12s"\ninterval = "4s"\n',
    ),
}


# How long an interrupted pipeline waits for the running stage to roll back and record
# itself (a rollback drains, stops replicas and checks the main deployment end to end).
STOP_GRACE_SECONDS = float(os.environ.get("PIPELINE_STOP_GRACE", "300"))
EXIT_INTERRUPTED = 130


class SetupError(Exception):
    """A system tool is missing or did not start; the message says how to fix it."""


class PipelineInterrupted(Exception):
    """SIGINT/SIGTERM reached the pipeline while ``stage`` ran; ``code`` is the stage's exit
    status, or None when it was still running after the grace period (``left``)."""

    def __init__(self, signum: int, stage: str, code: int | None, left: str = "") -> None:
        super().__init__(f"signal {signum} during {stage}")
        self.signum = signum
        self.stage = stage
        self.code = code
        self.left = left


@dataclass(frozen=True)
class StageRun:
    stage: str
    code: int
    seconds: float
    log: Path


def say(text: str = "") -> None:
    print(text, flush=True)


def _script(name: str, *args: str, fix: str) -> str:
    """Run a set-up script; what it said on stderr (its note), else on stdout."""
    result = subprocess.run(
        ["bash", str(SCRIPTS / name), *args], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise SetupError(f"{name} failed: {' / '.join(detail)}\n  fix: {fix}")
    return (result.stderr or result.stdout).strip()


def _need(command: str, install: str) -> None:
    if shutil.which(command) is None:
        raise SetupError(f"{command} is not installed\n  fix: {install}")


def set_up(reports: Path) -> dict[str, str]:
    """Start or check what the stages need; what set-up found or started, per part."""
    say("set-up:")
    _need("dockerd", "apt-get install -y docker.io")
    _need("haproxy", "apt-get install -y haproxy")
    _need("chromium", "apt-get install -y chromium")
    _need("docker-registry", "apt-get install -y docker-registry")
    _need("npm", "apt-get install -y npm")
    from filelock import FileLock

    # Two pipelines starting at once (two copies on their own ports) take turns: they
    # would both start dockerd or the registry, or build the same image.
    with FileLock(str(SET_UP_LOCK)):
        docker = _script("start-docker.sh", fix="see /tmp/dockerd.log; start dockerd as root")
        say("  docker daemon      ok")
        _script("build-base-image.sh", fix="apt-get install -y debootstrap (needs Debian's mirror)")
        say("  base image         local/python:bookworm")
        _script("install-newman.sh", fix="npm install newman@6")
        say("  newman             node_modules/.bin/newman")
        record_started_daemons(ROOT, {"docker": docker})
        note = start_registry(int(REGISTRY.rsplit(":", 1)[1]))
        say(f"  registry           {REGISTRY}: {note.splitlines()[-1] if note else 'ok'}")
        _build_stable_image(reports)
        say(f"  main deployment    starts from {STABLE_IMAGE}")
    return {"docker": docker, "registry": note}


def start_registry(port: int, rootdir: Path = ROOT) -> str:
    """Reuse the registry on ``port`` or start one (recorded for the teardown); what
    ``start-registry.sh`` said."""
    note = _script(
        "start-registry.sh",
        str(port),
        fix="apt-get install -y docker-registry, or free the port for the demo's registry",
    )
    record_started_daemons(rootdir, {"registry": note})
    return note


def record_started_daemons(rootdir: Path, notes: dict[str, str]) -> None:
    """Record what set-up started (its scripts say "started ... (pid N"), so that the
    teardown ends exactly those: a daemon that was already running is not recorded and
    stays.  dockerd's containerd is recorded before it: the teardown ends the last started
    first, and dockerd normally ends its own containerd."""
    from pytest_release.canary.started_processes import (
        StartedProcess,
        children_named,
        record_started,
    )
    from pytest_release.system.processes import ProcessRef

    docker = re.search(r"started dockerd \(pid (\d+)\)", notes.get("docker", ""))
    if docker:
        dockerd = int(docker[1])
        for containerd in children_named(dockerd, "containerd"):
            what = f"containerd of that dockerd (pid {dockerd})"
            record_started(rootdir, StartedProcess("containerd", what, ProcessRef.of(containerd)))
        # dockerd stops its containers before it exits: give it time.
        what = "dockerd (Docker daemon, log /tmp/dockerd.log)"
        record_started(rootdir, StartedProcess("dockerd", what, ProcessRef.of(dockerd), 60.0))
    registry = re.search(r"started docker-registry on (\S+) \(pid (\d+)", notes.get("registry", ""))
    if registry:
        what = f"docker-registry on {registry[1]}"
        record_started(rootdir, StartedProcess("registry", what, ProcessRef.of(int(registry[2]))))


def _build_stable_image(reports: Path) -> None:
    try:
        import docker
    except ImportError:
        raise SetupError(
            "the docker SDK is missing\n  fix: pip install 'pytest-release[docker]'"
        ) from None
    client = docker.from_env()
    try:
        client.images.get(STABLE_IMAGE)
        return
    except docker.errors.ImageNotFound:
        pass
    log = reports / "stable-image.log"
    with log.open("w") as handle:
        for chunk in client.api.build(
            path=str(ROOT / "examples" / "shop"),
            tag=STABLE_IMAGE,
            buildargs={"SHOP_VERSION": "stable"},
            network_mode="host",
            rm=True,
            decode=True,
        ):
            handle.write(chunk.get("stream", "") + chunk.get("error", ""))
            if "error" in chunk:
                raise SetupError(f"building {STABLE_IMAGE} failed: {chunk['error']}; see {log}")


def _git_sha() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "nogit0000000"


# The pipeline's release ids: the commit's first 12 characters (or "nogit0000000"), "-", n.
PIPELINE_RELEASE_ID = re.compile(r"^[0-9a-z]{12}-(\d+)$")


def pipeline_number(ledger: Path) -> int:
    """One more than the highest ``n`` of the ledger's ``<sha12>-<n>`` ids: every pipeline
    run that recorded a stage took its number (whatever stages it ran, on whatever
    commit), so the ids count up one by one; a run stopped before its first stage recorded
    anything (set-up, a refused stage) leaves its number to the next run."""
    if not ledger.exists():
        return 1
    runs = json.loads(ledger.read_text()).get("runs", [])
    numbers = [
        int(match[1])
        for run in runs
        if (match := PIPELINE_RELEASE_ID.match(str(run.get("release_id", ""))))
    ]
    return max(numbers, default=0) + 1


def _overlay(path: Path, version: str, bad: str | None) -> Path:
    """The per-run layer: what the build stage bakes into the image."""
    knobs = f", {BAD_RELEASES[bad][0]}" if bad else ""
    path.write_text(
        "# written by scripts/pipeline.py for one pipeline run\n"
        "[gates.build]\n"
        f'build_args = {{ SHOP_VERSION = "{version}"{knobs} }}\n'
    )
    return path


def ports_layer(path: Path, ports: Mapping[str, int]) -> Path | None:
    """The layer that moves suites/release.toml's ports (the defaults) to ``ports``
    (:data:`PORT_DEFAULTS`' variables); None, and no file, when every port is its default."""
    if dict(ports) == PORT_DEFAULTS:
        path.unlink(missing_ok=True)
        return None
    uat, build = ports["PIPELINE_UAT_PORT"], ports["PIPELINE_BUILD_PORT"]
    staging = ports["PIPELINE_STAGING_PORT"]
    path.write_text(
        "# written by scripts/pipeline.py: the ports of $PIPELINE_*_PORT\n"
        "[gates.docker]\n"
        f"port = {uat}\n"
        f'env = {{ PORT = "{uat}" }}\n'
        "[gates.e2e]\n"
        f'base_url = "http://127.0.0.1:{uat}"\n'
        "[gates.newman]\n"
        f'env_vars = {{ baseUrl = "http://127.0.0.1:{uat}" }}\n'
        "[gates.build]\n"
        f"port = {build}\n"
        f'env = {{ PORT = "{build}" }}\n'
        "[gates.canary.router]\n"
        f"port = {ports['PIPELINE_PRODUCTION_PORT']}\n"
        "[environments.staging]\n"
        f'env = {{ SHOP_URL = "http://127.0.0.1:{staging}" }}\n'
        "[environments.staging.gates.canary.router]\n"
        f"port = {staging}\n"
    )
    return path


def set_up_kubernetes(args: argparse.Namespace, overlay: Path) -> Path:
    """Check the cluster and its main Deployment; write the profile that points the canary
    gate at them (platform kubernetes, router traefik)."""
    say("set-up (kubernetes):")
    if not args.kubeconfig or not Path(args.kubeconfig).is_file():
        given = f"--kubeconfig {args.kubeconfig} is not a file" if args.kubeconfig else ""
        raise SetupError(
            f"{given or '--platform kubernetes needs --kubeconfig'}\n  fix: pass the "
            "kubeconfig of the cluster, e.g. --kubeconfig ~/.kube/config"
        )
    if not args.image:
        raise SetupError(
            "--platform kubernetes needs --image\n  fix: pass the release image, one the "
            "cluster can pull, e.g. --image ghcr.io/acme/shop:1.1.0"
        )
    from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS, KubeApi
    from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
    from pytest_release.errors import PlatformError

    kubeconfig = str(Path(args.kubeconfig).resolve())
    try:
        api = KubeApi(ClusterAccess(kubeconfig=kubeconfig))
        main = api.get(DEPLOYMENTS, args.namespace, "shop")
    except PlatformError as exc:
        raise SetupError(f"{exc}\n  fix: check --kubeconfig and that the cluster is up") from None
    if main is None:
        raise SetupError(
            f"no Deployment 'shop' in namespace '{args.namespace}'\n  fix: kubectl apply -n "
            f"{args.namespace} -f deploy/kubernetes/example/ (the main Deployment, Service, "
            "IngressRoute; set its image to the version in production)"
        )
    image = main["spec"]["template"]["spec"]["containers"][0]["image"]
    say(f"  cluster            {api.server} (namespace {args.namespace})")
    say(f"  main deployment    shop on {image}")
    overlay.write_text(kubernetes_profile(args, kubeconfig))
    return overlay


def kubernetes_profile(args: argparse.Namespace, kubeconfig: str) -> str:
    """The profile of ``--platform kubernetes``: platform kubernetes, router traefik."""
    sample = "true" if args.sample_pods else "false"
    url = f'url = "{args.router_url}"' if args.router_url else ""
    # Traefik's API tells a rollback when the canary left the TraefikService; without it
    # the rollback waits router.drain_delay before it deletes the canary.
    api_url = f'api_url = "{args.traefik_api}"' if args.traefik_api else ""
    return (
        "# written by scripts/pipeline.py --platform kubernetes\n"
        "[gates.canary.platform]\n"
        'type = "kubernetes"\n'
        f'kubeconfig = "{kubeconfig}"\n'
        f'namespace = "{args.namespace}"\n'
        'app = "shop"\n'
        f"sample_pods = {sample}\n"
        'rollout_timeout = "300s"\n'
        "[gates.canary.router]\n"
        'type = "traefik"\n'
        f"{url}\n"
        f"{api_url}\n"
        "[stages.canary-1]\n"
        "requires = []  # built and pushed elsewhere: --image\n"
        "[gates.canary.judge]\n"
        f"http_checks = {sample}  # requests reach the pods and the router only from inside\n"
    )


def run_stage(
    stage: str,
    release_id: str,
    image: str,
    configs: list[Path],
    log: Path,
    router_url: str = ROUTER_URL,
    *,
    project: Path = ROOT,
    tests: str = "suites",
) -> StageRun:
    command = [sys.executable, "-m", "pytest", tests, f"--stage={stage}"]
    command += [f"--release-config={c}" for c in configs]
    command += [f"--release-id={release_id}", "-p", "no:cacheprovider", "-q"]
    if stage not in ("uat", "smoke", "rollback"):  # the stages that build or deploy it
        command.append(f"--image={image}")
    env = dict(os.environ)
    if stage == "smoke":  # smoke tests target production: the router
        env["SHOP_URL"] = router_url  # (the staging stage's environment sets staging's)
    start = time.monotonic()
    with log.open("w") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        with relayed_progress(stage, log):
            code = run_forwarding_signals(stage, command, project, env, handle)
    return StageRun(stage, code, time.monotonic() - start, log)


class HoldLines:
    """The progress lines of a stage's log, read as the stage writes them: one line per
    judged interval of a hold (``canary hold 00:04/00:12 ... | interval 1 ...: pass``) and
    the indented reasons under an interval that did not pass."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0
        self.rest = ""  # a line the stage has not finished writing
        self.in_reasons = False

    def poll(self) -> list[str]:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        *lines, self.rest = (self.rest + chunk.decode(errors="replace")).split("\n")
        shown = []
        for line in lines:
            # pytest's progress dots of the items before it may precede it on its line.
            start = line.find("canary hold ")
            if start >= 0 and " | interval " in line:
                shown.append(line[start:])
                self.in_reasons = True
            elif self.in_reasons and line.startswith("    "):
                shown.append(line)
            else:
                self.in_reasons = False
        return shown


@contextmanager
def relayed_progress(stage: str, log: Path, every: float = 0.5) -> Iterator[None]:
    """While the stage runs, its hold's interval lines appear under ``<stage> running ...``
    (the stage writes them to its log: its terminal is the log file)."""
    lines = HoldLines(log)
    stop = threading.Event()

    def relay() -> None:
        while True:
            stopping = stop.wait(every)
            for line in lines.poll():
                say(f"    {stage}: {line}")
            if stopping:
                return

    thread = threading.Thread(target=relay, name=f"progress-{stage}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def run_forwarding_signals(
    stage: str, command: list[str], cwd: Path, env: dict[str, str], output: TextIO
) -> int:
    """Run a stage and return its exit status; SIGINT/SIGTERM to the pipeline reach the
    stage exactly once, and the pipeline waits for it to roll back and record itself.

    The stage runs in its own process group: Ctrl-C in a terminal signals the terminal's
    whole foreground group, and ``subprocess.run`` kills its child when interrupted; either
    would stop a rollout mid-hold or give the stage a second signal.  Here the pipeline
    alone passes the first signal on, then waits up to :data:`STOP_GRACE_SECONDS` and
    raises :class:`PipelineInterrupted`."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if not received:
            with suppress(ProcessLookupError):
                process.send_signal(signum)
        received.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = _wait(process, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        left = ""
        if code is None:
            left = (
                f"the stage (pid {process.pid}, process group {process.pid}) was still running "
                f"{STOP_GRACE_SECONDS:g}s after the signal; it was left running to finish its "
                "rollback: check --release-status, or run the rollback stage"
            )
        raise PipelineInterrupted(received[0], stage, code, left)
    assert code is not None
    return code


def _wait(process: subprocess.Popen[bytes], received: list[int]) -> int | None:
    """The stage's exit status; after a signal, None when it outlives the grace period."""
    deadline: float | None = None
    while True:
        if received and deadline is None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
        timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                return None


def run_stages(
    stages: list[str], run_one: Callable[[str], StageRun], ledger: Path, release_id: str
) -> tuple[list[StageRun], int | None]:
    """Run ``stages`` in order until one fails (a failed smoke stage is rolled back); the
    runs, and the exit status when SIGINT/SIGTERM stopped the pipeline (else None)."""
    runs: list[StageRun] = []
    try:
        for stage in stages:
            say(f"  {stage:<10} running ...")
            run = run_one(stage)
            runs.append(run)
            outcome = _ledger_entry(ledger, release_id, stage).get("outcome", f"exit {run.code}")
            log = run.log.relative_to(ROOT) if run.log.is_relative_to(ROOT) else run.log
            say(f"  {stage:<10} {outcome} in {run.seconds:.0f}s  (log {log})")
            if run.code != 0:
                if stage == "smoke":
                    say("  smoke failed: rolling back")
                    runs.append(run_one("rollback"))
                break
    except PipelineInterrupted as exc:
        say(interrupted_summary(exc, ledger, release_id))
        return runs, EXIT_INTERRUPTED
    return runs, None


def interrupted_summary(exc: PipelineInterrupted, ledger: Path, release_id: str) -> str:
    """One line: which signal stopped the pipeline in which stage, and what the stage's
    ledger entry says (its rollback), or what was left running."""
    name = signal.Signals(exc.signum).name
    entry = _ledger_entry(ledger, release_id, exc.stage)
    if exc.code is None:
        return f"pipeline interrupted by {name} during {exc.stage}: {exc.left}"
    recorded = str(entry.get("outcome", "no ledger entry"))
    message = str(entry.get("message") or "")
    return (
        f"pipeline interrupted by {name} during {exc.stage}: the stage exited {exc.code}, "
        f"ledger says {recorded}" + (f" ({message})" if message else "")
    )


def _ledger_entry(ledger: Path, release_id: str, stage: str) -> dict[str, object]:
    runs = json.loads(ledger.read_text()).get("runs", []) if ledger.exists() else []
    matching = [r for r in runs if r["release_id"] == release_id and r["stage"] == stage]
    return matching[-1] if matching else {}


def _verdicts(junit: Path) -> list[str]:
    """One line per judged interval: verdict, canary error rate and p95 (JUnit properties)."""
    if not junit.exists():
        return []
    lines = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("health@"):
            continue
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "judge.verdict" not in props:
            lines.append(f"    {name:<11} not judged (an earlier interval failed)")
            continue
        text = (
            f"    {name:<11} {props['judge.verdict']:<12} "
            f"errors {props.get('judge.error_rate.value', '?')}% "
            f"(n={props.get('judge.error_rate.samples', '?')}), "
            f"p95 {float(props.get('judge.p95_latency.value') or 0):.0f} ms"
        )
        failure = case.find("failure")
        if failure is not None and failure.get("message"):
            text += f"  <- {failure.get('message')}"
        lines.append(text)
    return lines


def first_failure(junit: Path) -> str | None:
    """``check: first line of its message`` for the first failed or errored test case of
    a stage's JUnit report (already redacted by the stage), None when there is none."""
    if not junit.exists():
        return None
    try:
        root = ET.parse(junit).getroot()
    except ET.ParseError as exc:
        return f"(the JUnit report {junit} cannot be read: {exc})"
    for case in root.iter("testcase"):
        for child in case:
            if child.tag not in ("failure", "error"):
                continue
            text = (child.get("message") or child.text or "").strip()
            first = text.splitlines()[0] if text else "(no message)"
            return f"{case.get('name', '?')}: {first[:200]}"
    return None


def summary(
    runs: list[StageRun],
    release_id: str,
    ledger: Path,
    reports: Path,
    production: str = f"production (HAProxy): {ROUTER_URL}",
    partial: list[str] | None = None,
    set_up_notes: dict[str, str] | None = None,
    version: str | None = None,
    bad: bool = False,
) -> None:
    """The closing table; ``partial`` names the stages run when the user chose fewer than
    the pipeline's (``--stages``): then the header says so, not a whole release.  On the
    local platform it says what production and staging serve now (``version`` is this
    release's, ``bad`` when it was deliberately bad), read from their ``/version``."""
    say()
    note = f" (partial: only {', '.join(partial)})" if partial else ""
    say(f"pipeline summary for release {release_id}{note}")
    say(f"  {'stage':<10} {'outcome':<12} {'time':>7}  gates")
    for run in runs:
        entry = _ledger_entry(ledger, release_id, run.stage)
        gates = entry.get("gates", {})
        assert isinstance(gates, dict)
        gate_text = ", ".join(
            f"{name} {g['status']} ({g['passed']} passed, {g['failed']} failed)"
            for name, g in gates.items()
        )
        outcome = entry.get("outcome", f"exit {run.code}")
        say(f"  {run.stage:<10} {outcome!s:<12} {run.seconds:6.0f}s  {gate_text}")
        for line in _verdicts(reports / f"{run.stage}.xml"):
            say(line)
        if outcome != "passed":
            reason = first_failure(reports / f"{run.stage}.xml")
            say(f"    reason: {reason or f'no failed check in its JUnit; see {run.log}'}")
    say()
    say(f"JUnit: {reports}/<stage>.xml   logs: {reports}/demo/<stage>.log   ledger: {ledger}")
    python = shown_python()
    say(
        f"status: {python} -m pytest --release-status --release-id={release_id} "
        "--release-config=suites/release.toml"
    )
    if not production.startswith("production (HAProxy)"):
        say(production)
    else:
        for line in serving_now(version, bad):
            say(line)
        for line in leftovers(set_up_notes or {}):
            say(line)
        say(f"stop all of it: {teardown_command(python)}")


def teardown_command(python: str) -> str:
    """The one command that stops what the pipeline left running (from the user's
    directory: the project's root is named unless it is that directory)."""
    command = f"{python} -m pytest_release.canary.teardown"
    if Path(os.path.abspath(Path.cwd())) != ROOT:
        command += f" {ROOT}"
    return command


def served_versions(url: str, asks: int = 3) -> list[str]:
    """The versions ``url/version`` answers (asked ``asks`` times: a router spreads the
    requests over the replicas); [] when nothing answers there."""
    import urllib.error
    import urllib.request

    seen: list[str] = []
    for _ in range(asks):
        try:
            with urllib.request.urlopen(f"{url}/version", timeout=5) as response:
                version = str(json.loads(response.read()).get("version", "?"))
        except (OSError, ValueError, urllib.error.URLError):
            continue
        if version not in seen:
            seen.append(version)
    return seen


def serving_now(version: str | None, bad: bool) -> list[str]:
    """What production and staging serve at the end of the run, each asked, so that no
    line points at a URL where nothing listens, and a bad release that stays on staging
    (it passed staging's checks; canary-1 rolls back production only) is said to be
    there."""
    lines = []
    for name, url in (("production", ROUTER_URL), ("staging", STAGING_URL)):
        served = served_versions(url)
        if not served:
            lines.append(
                f"{name} (HAProxy): nothing answers on {url} (no release has reached "
                f"{name} since the last teardown)"
            )
            continue
        text = f"{name} (HAProxy): {url} serves {', '.join(served)}"
        if version in served and bad:
            text += (
                f": this bad release, which passed {name}'s checks; it stays there until "
                "the next release replaces it (a rollback in production leaves staging "
                "as it is)"
                if name == "staging"
                else ": this bad release (NOT stopped)"
            )
        elif version in served:
            text += " (this release)"
        lines.append(text)
    return lines


def traefik_serving(router_url: str | None, namespace: str) -> str:
    """What production serves through Traefik at the end of the run (its ``/version``,
    asked from this machine), or why that is not known."""
    if not router_url:
        return f"production (Traefik): (no --router-url), namespace {namespace}"
    served = served_versions(router_url)
    if not served:
        return (
            f"production (Traefik): nothing answered on {router_url}/version from this "
            f"machine, namespace {namespace}"
        )
    return f"production (Traefik): {router_url} serves {', '.join(served)}, namespace {namespace}"


def _listens(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, int(port))) == 0


def leftovers(set_up_notes: dict[str, str], rootdir: Path = ROOT) -> list[str]:
    """What the pipeline leaves running on this machine: the routers that answer now (and
    their replicas), and the registry and the Docker daemon: those a pipeline run started
    (recorded, the teardown ends them) and those that were running before (left alone)."""
    from pytest_release.canary.started_processes import started_processes

    lines = ["left running:"]
    for name, url in (("production", ROUTER_URL), ("staging", STAGING_URL)):
        if _listens(url):
            lines.append(f"  {name:<11} HAProxy {url} and its replicas (the teardown stops them)")
    started = started_processes(rootdir)
    for process in started:
        lines.append(
            f"  {process.name:<11} {process.what}, pid {process.ref.pid}: started by the "
            "pipeline (the teardown stops it)"
        )
    names = {process.name for process in started}
    if set_up_notes.get("registry") and "registry" not in names:
        lines.append(f"  registry    {REGISTRY}, already running before (the teardown leaves it)")
    if set_up_notes.get("docker") and "dockerd" not in names:
        lines.append("  dockerd     already running before (the teardown leaves it)")
    return lines if len(lines) > 1 else []


def shown_python(cwd: Path | None = None) -> str:
    """The interpreter running the pipeline, as a user types it from ``cwd`` (the
    repository's venv: ``.venv/bin/python``): a bare ``python`` may lack pytest-release."""
    cwd = cwd or Path.cwd()
    executable = Path(sys.executable)
    if not executable.is_absolute():
        return str(executable)
    # Not resolved: the venv's python is a symlink to the system's, which lacks the plugin.
    absolute = Path(os.path.abspath(executable))
    with suppress(ValueError):
        return str(absolute.relative_to(Path(os.path.abspath(cwd))))
    return str(absolute)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bad",
        nargs="?",
        const="canary",
        choices=sorted(BAD_RELEASES),
        help="release a deliberately bad version: 'canary' (the default) adds 800 ms to every "
        "request, which staging's functional checks pass and canary-1 must roll back; "
        "'staging' answers 20 %% of requests with 500, which staging must stop",
    )
    parser.add_argument(
        "--stages",
        default=None,
        help="comma-separated stages to run (default: all; on kubernetes: canary-1, "
        "canary-2, canary-3 and, with --router-url, smoke)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="release through a profile of docs/profiles.md with demo holds: 'seed-002' (5 -> "
        "25 -> 50 -> 100 %%, canary-4 promotes) or 'bluegreen' (bluegreen-deploy, "
        "bluegreen-switch, smoke, bluegreen-finish)",
    )
    parser.add_argument(
        "--platform",
        choices=["local", "kubernetes"],
        default="local",
        help="local: Docker and HAProxy on this machine (default); kubernetes: the cluster "
        "of --kubeconfig with Traefik (stages canary-1, canary-2, canary-3, smoke)",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig of the cluster (--platform kubernetes)")
    parser.add_argument("--namespace", default="shop", help="namespace of the shop Deployment")
    parser.add_argument(
        "--image", help="release image the cluster can pull (--platform kubernetes)"
    )
    parser.add_argument(
        "--router-url", help="where Traefik serves the shop, for the smoke stage and the holds"
    )
    parser.add_argument(
        "--traefik-api",
        help="Traefik's API (its traefik entrypoint, e.g. http://traefik.example:9000): "
        "router.api_url, read to know when a routing change is applied (else rollbacks "
        "wait router.drain_delay)",
    )
    parser.add_argument(
        "--sample-pods",
        action="store_true",
        help="this machine reaches pod IPs and --router-url (it runs inside the cluster's "
        "network): the holds judge real requests (judge.http_checks), not pod status only",
    )
    args = parser.parse_args(argv)
    if PORT_PROBLEMS:
        parser.error("; ".join(PORT_PROBLEMS))
    kubernetes = args.platform == "kubernetes"
    if kubernetes and args.bad:
        parser.error("--bad builds a bad shop here; on kubernetes pass a bad image with --image")
    if args.profile and (kubernetes or args.bad):
        parser.error(
            f"--profile {args.profile} runs the good release on the local platform; leave out "
            + ("--platform kubernetes" if kubernetes else "--bad")
        )
    known = KUBERNETES_STAGES if kubernetes else STAGES
    if args.profile:
        known = PROFILES[args.profile][0]
    if args.stages is None:
        default = known
        if kubernetes:
            default = KUBERNETES_STAGES if args.router_url else KUBERNETES_STAGES[:-1]
        args.stages = ",".join(default)
        partial = None
    else:
        chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in known]
        if unknown or not chosen:
            parser.error(
                f"--stages {args.stages!r}: "
                + (f"unknown stage {', '.join(map(repr, unknown))}" if unknown else "empty")
                + f"; the stages{' on kubernetes' if kubernetes else ''} are "
                + ", ".join(known)
                + f" (comma-separated, e.g. --stages {','.join(known[:2])})"
            )
        args.stages = ",".join(chosen)
        partial = [s for s in known if s in chosen] if set(chosen) != set(known) else None
    reports = ROOT / "reports"
    demo = reports / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    ledger = ROOT / ".pytest-release" / "ledger.json"
    set_up_notes: dict[str, str] = {}
    try:
        profile = set_up_kubernetes(args, demo / "kubernetes.toml") if kubernetes else None
        if not kubernetes:
            set_up_notes = set_up(demo)
    except SetupError as exc:
        say(f"\npipeline stopped during set-up: {exc}")
        return 2

    number = pipeline_number(ledger)
    sha = _git_sha()
    release_id = f"{sha[:12]}-{number}"
    version = f"release-{number}"  # the image tag and what the shop's /version answers
    image = args.image if kubernetes else f"{REGISTRY}/shop:{version}"
    configs = [
        ROOT / "suites" / "release.toml",
        ROOT / "suites" / "demo.toml",
        _overlay(demo / "pipeline.toml", version, args.bad),
    ]
    if profile is not None:
        configs.append(profile)
    if args.profile:
        demo_holds = demo / f"{args.profile}-demo.toml"
        demo_holds.write_text(
            f"# written by scripts/pipeline.py --profile {args.profile}: demo holds\n"
            + PROFILES[args.profile][1]
        )
        configs[1:1] = [ROOT / "suites" / f"{args.profile}.toml"]  # over release.toml
        configs.insert(3, demo_holds)  # after demo.toml, before the per-run layer
    ports = None if kubernetes else ports_layer(demo / "ports.toml", PORTS)
    if ports is not None:
        configs.insert(configs.index(demo / "pipeline.toml"), ports)  # before the per-run one
    router_url = (args.router_url or ROUTER_URL) if kubernetes else ROUTER_URL
    production = f"production (HAProxy): {ROUTER_URL}"
    bad_note = f" (deliberately bad: {BAD_RELEASES[args.bad][1]})" if args.bad else ""
    profile_note = f" (profile {args.profile}: {' -> '.join(known)})" if args.profile else ""
    say(f"\nrelease {release_id}: image {image}{bad_note}{profile_note}")

    def run_one(stage: str) -> StageRun:
        return run_stage(stage, release_id, image, configs, demo / f"{stage}.log", router_url)

    stages = [s for s in known if s in args.stages.split(",")]
    runs, interrupted = run_stages(stages, run_one, ledger, release_id)
    if interrupted is not None:
        return interrupted
    summary(
        runs,
        release_id,
        ledger,
        reports,
        traefik_serving(args.router_url, args.namespace) if kubernetes else production,
        partial,
        set_up_notes,
        version,
        bool(args.bad),
    )
    if args.bad:
        where = BAD_RELEASES[args.bad][2]
        rolled_back = _ledger_entry(ledger, release_id, where).get("outcome") == "rolled-back"
        later = STAGES[STAGES.index(where) + 1 :]
        stopped = rolled_back and not any(r.stage in later for r in runs)
        say(
            f"the bad release was rolled back automatically in {where}"
            if stopped
            else f"the bad release was NOT stopped in {where}"
        )
        return 0 if stopped else 1
    return 0 if runs and all(r.code == 0 for r in runs) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # during set-up or between stages: no stage was running
        say("\npipeline interrupted (no stage was running)")
        sys.exit(EXIT_INTERRUPTED)

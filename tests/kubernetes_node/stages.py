"""Release stages on the real node: the fault service's images, a project whose stages run
as real pytest sessions inside the cluster's network namespace, a load loop through Traefik
and readers of the stages' JUnit reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_release.canary.platforms.kubernetes.client import KubeApi
from tests.kubernetes_node.cluster import NodeCluster
from tests.support.spine import nest_tables, stage_cases
from tests.support.stages import canary_stages

FAULT_SERVICE = Path(__file__).parents[1] / "services" / "fault_service.py"
REPO = "localhost/pytest-release/fault"
SERVE = '["python3", "/app/fault_service.py"]'
# Allocates 512 MiB at start: with the main Deployment's 64 MiB limit (the canary copies
# its pod template) the kernel kills it at every start, the kubelet reports OOMKilled.
OOM = (
    '["python3", "-c", "import sys; print(\'release 5 loads its cache\', file=sys.stderr, '
    "flush=True); cache = b'x' * (512 << 20)\"]"
)
# tag -> (environment baked into the image, command); the platform sets only the image.
RELEASES: dict[str, tuple[dict[str, str], str]] = {
    "1": ({"VERSION": "1"}, SERVE),
    "2": ({"VERSION": "2"}, SERVE),
    "3-bad": ({"VERSION": "3-bad", "FAULT_ERROR_RATE": "0.5"}, SERVE),
    "4-crash": ({"VERSION": "4-crash", "FAULT_CRASH_AFTER": "15"}, SERVE),
    "5-oom": ({"VERSION": "5-oom"}, OOM),
    "6-slow": ({"VERSION": "6-slow", "FAULT_LATENCY_MS": "800"}, SERVE),
    "7-errors-5": ({"VERSION": "7-errors-5", "FAULT_ERROR_RATE": "0.05"}, SERVE),
    # Serves every request, but its /health answers 503 from 45 s after its start: its
    # readiness probe fails during the hold (test_unready_canary.py).
    "8-unready": ({"VERSION": "8-unready", "FAULT_FAIL_HEALTH_AFTER": "45"}, SERVE),
}
DOCKERFILE = """\
FROM {base}
COPY fault_service.py /app/fault_service.py
ENV HOST=0.0.0.0 PORT=8080 {env}
CMD {command}
"""


def build_fault_images(
    cluster: NodeCluster, base_image: str, docker_client: Any, workdir: Path
) -> dict[str, str]:
    """The fault service built on the base image, one tag per release, imported into the
    node in one archive (the base layers once)."""
    refs = {}
    for tag, (env, command) in RELEASES.items():
        context = workdir / f"fault-{tag}"
        context.mkdir(parents=True, exist_ok=True)
        knobs = " ".join(f"{k}={v}" for k, v in env.items())
        dockerfile = DOCKERFILE.format(base=base_image, env=knobs, command=command)
        (context / "Dockerfile").write_text(dockerfile)
        (context / "fault_service.py").write_bytes(FAULT_SERVICE.read_bytes())
        ref = f"{REPO}:{tag}"
        docker_client.images.build(path=str(context), tag=ref, rm=True, network_mode="host")
        refs[tag] = ref
    archive = workdir / "fault.tar"
    subprocess.run(["docker", "save", "-o", str(archive), *refs.values()], check=True, timeout=600)
    cluster.ctr("images", "import", "--no-unpack=false", str(archive))
    archive.unlink()
    return refs


SEED_JUDGE = """
http_checks = true
max_restarts = 0
min_requests = 10
max_p95_latency_ms = 3000
comparison = { alpha = 0.001, min_samples = 10 }
"""


def stage_toml(
    namespace: str,
    kubeconfig: Path,
    router_url: str,
    *,
    stable_image: str | None = f"{REPO}:1",
    judge: str = SEED_JUDGE,
    extra: str = "",
    router: str = 'type = "traefik"',
) -> str:
    """The seed scenario's stages (canary-1 10 %, canary-2 50 %, canary-3 promotes) on the
    kubernetes platform, the Traefik router (or ``router``'s) and the cluster's ConfigMap
    ledger."""
    rollout = 'action = "canary", hold = "6s", interval = "2s"'
    stable = f'stable_image = "{stable_image}"' if stable_image else ""
    return f"""
[ledger]
backend = "kubernetes"
namespace = "{namespace}"
application = "shop"
kubeconfig = "{kubeconfig}"
lease_duration = 30

{canary_stages(rollout)}
{extra}
[gates.canary]
paths = []
verify_requests = 20

[gates.canary.platform]
type = "kubernetes"
namespace = "{namespace}"
app = "shop"
kubeconfig = "{kubeconfig}"
{stable}
stable_replicas = 1
termination_grace_period = 2
sample_pods = true
rollout_timeout = "240s"

[gates.canary.router]
{router}
url = "{router_url}"

[gates.canary.sampler]
rate = 10
direct_rate = 20
concurrency = 32
health_interval = "0.5s"
status_interval = "0.5s"
timeout = 5

[gates.canary.judge]
{judge}
"""


def ingress_route(namespace: str) -> dict[str, Any]:
    """Traefik's ``web`` entrypoint -> the TraefikService the router manages (named after
    the main Deployment).  Other tests route by Host, which Traefik ranks first."""
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "match": "PathPrefix(`/`)",
                    "kind": "Rule",
                    "services": [{"name": "shop", "kind": "TraefikService"}],
                }
            ],
        },
    }


class Project:
    """A project directory whose stages run inside the cluster's netns."""

    def __init__(self, cluster: NodeCluster, root: Path, namespace: str, toml: str) -> None:
        self.cluster = cluster
        self.root = root
        self.namespace = namespace
        self.durations: dict[str, float] = {}
        (root / "pyproject.toml").write_text(
            "[tool.pytest-release]\n" + nest_tables(toml), encoding="utf-8"
        )

    def command(self, stage: str, image: str, release: str) -> list[str]:
        return [
            "env", "-C", str(self.root), sys.executable, "-m", "pytest",
            f"--stage={stage}", f"--release-id={release}", f"--release-image={image}",
            "-p", "no:cacheprovider", "-rA",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        host = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        return {**host, **self.cluster.environment()}

    def stage(self, stage: str, image: str, release: str) -> tuple[int, str]:
        started = time.monotonic()
        result = self.cluster.run_in_netns(
            self.command(stage, image, release), timeout=900, check=False, env=self.environment()
        )
        self.durations[f"{stage} {image}"] = time.monotonic() - started
        out = result.stdout + result.stderr
        (self.root / f"{stage}-{release}.log").write_text(out, encoding="utf-8")
        return result.returncode, out

    def start_stage(self, stage: str, image: str, release: str) -> subprocess.Popen[str]:
        """The stage in the background (the caller ends it with ``communicate``)."""
        command = self.cluster.netns_command(self.command(stage, image, release))
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.environment(),
        )

    def cases(self, stage: str) -> dict[str, tuple[str, str, dict[str, str]]]:
        """JUnit test case -> (outcome, message, properties)."""
        return stage_cases(self.root, stage)

    def rolled_back(self, rc: int, out: str, stage: str = "canary-1") -> str:
        """Asserts that ``stage`` (its return code and output) failed and the canary gate
        rolled it back itself; the message of its first failed look (``health@``)."""
        assert rc == 1, out
        assert f"release stage {stage}: rolled-back" in out, out
        failed = self.failures(stage, "health@")
        assert failed, out
        return failed[0]

    def failures(self, stage: str, prefix: str = "") -> list[str]:
        """Messages of the failed JUnit cases of ``stage`` whose names start with ``prefix``."""
        return [
            message
            for name, (outcome, message, _) in self.cases(stage).items()
            if name.startswith(prefix) and outcome in ("failure", "error")
        ]


# Continuous GETs through Traefik from inside the netns until the stop file exists; counts
# start at the first answer (the TraefikService is created by the first stage).  500 is the
# fault service's own error (the bad release); anything else that is not 200 (404: no
# route, 502/503: no backend, transport errors) is a request the rollout lost.  ``last``:
# when the last request each version answered was sent (lost ones carry their send time).
LOAD = """\
import json, os, sys, time, urllib.error, urllib.request
url, stop = sys.argv[1], sys.argv[2]
counts, last, lost, app_errors, started = {}, {}, [], 0, False
while not os.path.exists(stop):
    sent = time.time()
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            version = response.headers.get("X-Version", "?")
            counts[version] = counts.get(version, 0) + 1
            last[version] = sent
            started = True
    except urllib.error.HTTPError as exc:
        if exc.code == 500 and started:
            app_errors += 1
        elif started:
            lost.append(f"{sent:.3f} HTTP {exc.code}")
    except Exception as exc:
        if started:
            lost.append(f"{sent:.3f} {exc!r}")
    time.sleep(0.02)
print(json.dumps({"versions": counts, "last": last, "lost": lost, "app_errors": app_errors}))
"""


class Load:
    """The load loop in the background, inside the netns."""

    def __init__(self, cluster: NodeCluster, root: Path) -> None:
        self.stop_file = root / f"load-{time.monotonic_ns()}.stop"
        command = cluster.netns_command(
            [sys.executable, "-c", LOAD, cluster.traefik_url + "/", str(self.stop_file)]
        )
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def close(self) -> None:
        if self.process.poll() is None:
            self.result()

    def result(self) -> dict[str, Any]:
        self.stop_file.touch()
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()  # our own child, by PID
            out, _ = self.process.communicate()
        self.stop_file.unlink(missing_ok=True)
        parsed = json.loads(out)
        assert isinstance(parsed, dict)
        return parsed


@dataclass(frozen=True)
class NodeBed:
    """What a release scenario on the real node works with (fixture ``bed``): the cluster,
    the fault service's images by release tag (``RELEASES``), the API server through the
    host's forward, the test's namespace and the starter of load loops through Traefik."""

    cluster: NodeCluster
    images: dict[str, str]
    api: KubeApi
    namespace: str
    load: Callable[[], Load]

    @property
    def traefik_api_router(self) -> str:
        """The router keys of a Traefik router that reads Traefik's API to know when a
        change is applied (``router.api_url``)."""
        return f'type = "traefik"\napi_url = "{self.cluster.traefik_api_url}"'

    def stage_toml(self, *, extra: str = "", router: str = 'type = "traefik"') -> str:
        """``stage_toml`` of the seed scenario in the namespace, through Traefik's ``web``
        entrypoint."""
        return stage_toml(
            self.namespace,
            self.cluster.kubeconfig,
            self.cluster.traefik_url,
            extra=extra,
            router=router,
        )

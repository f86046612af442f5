"""A stage that dies during its hold, on the real node (issue 29).

canary-1 of release r2 (then, in a second round, r3) holds 10 % of the traffic for the
fault service's release 2 when its process is SIGKILLed (no handler runs, nothing rolls
back).  Its stage Lease in the cluster (ledger.lease_ttl 3 s) expires: the watchdog
(``python -m pytest_release k8s-watchdog run``, here beside the cluster in its netns)
takes the canary Service out of the TraefikService (100 % stable) and scales the canary
to 0, so requests through Traefik reach release 1 only; ``--release-status`` shows the
rollout ABANDONED, the next stage refuses, and ``--stage=rollback --release-id=r2``
reconciles it: 100 % stable, the canary gone, the dead stage recorded ``rolled-back``
(abandoned), and main left on release 1, since r2 never promoted.

A load generator through Traefik runs from the first hold to the last reconcile, and a
timeline of what Traefik itself applied (its API) runs beside it: no request may be lost,
none may reach the canary once Traefik applied the switch, and Traefik must never drop the
TraefikService (it does when one of the Services it names, weight 0 included, has no
serving endpoint or is gone: the whole route then answers 404).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from pytest_release.canary.platforms.kubernetes.client import LEASES, KubeApi
from pytest_release.canary.platforms.kubernetes.stage_lease import STAGE_LEASE_LABEL
from tests.kubernetes.k8s_support import (
    image_and_replicas,
    ledger_runs,
    pods,
    service_exists,
    wait_for,
)
from tests.kubernetes.k8s_support import weights_of as stored_weights
from tests.kubernetes_node.stages import NodeBed, Project
from tests.kubernetes_node.traefik_watch import TraefikTimeline

ROUNDS = 2  # dead stage -> switch -> reconcile, twice while the load runs


def _pytest(project: Project, *args: str) -> tuple[int, str]:
    """pytest in the project, inside the netns (where the API server is reachable)."""
    command = ["env", "-C", str(project.root), sys.executable, "-m", "pytest", *args]
    result = project.cluster.run_in_netns(
        command, timeout=900, check=False, env=project.environment()
    )
    return result.returncode, result.stdout + result.stderr


def _weights(api: KubeApi, namespace: str) -> dict[str, int] | None:
    try:
        return stored_weights(api, namespace)
    except (KeyError, TypeError):
        return None


def test_sigkilled_stage_is_abandoned_refused_and_reconciled_leaving_main_unchanged(
    project: Project,
    bed: NodeBed,
) -> None:
    # The seed project with a long hold (the kill lands in it) and a short lease; the
    # router reads Traefik's API to know when a change is applied.
    toml = bed.stage_toml(router=bed.traefik_api_router)
    toml = toml.replace('hold = "6s"', 'hold = "300s"', 1)
    toml = toml.replace("lease_duration = 30\n", 'lease_duration = 30\nlease_ttl = "3s"\n')
    dying = Project(bed.cluster, project.root, bed.namespace, toml)
    watchdog = subprocess.Popen(
        bed.cluster.netns_command(
            [
                sys.executable, "-m", "pytest_release", "k8s-watchdog", "run",
                f"--namespace={bed.namespace}", "--app=shop",
                f"--kubeconfig={bed.cluster.kubeconfig}", "--interval=0.5",
                f"--traefik-api={bed.cluster.traefik_api_url}",
            ]
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dying.environment(),
    )  # fmt: skip
    switched_at: list[float] = []
    traffic: dict[str, Any] = {}
    timeline = TraefikTimeline(bed.cluster, bed.namespace)
    try:
        with timeline:
            during = bed.load()
            for round_ in range(ROUNDS):
                release = f"r{round_ + 2}"
                killed_at, pid = _die(dying, bed.api, bed.namespace, bed.images["2"], release)
                switched_at.append(_switched(timeline, killed_at))
                print(f"{release}: Traefik applied 100% stable {switched_at[-1] - killed_at:.2f}s "
                      "after SIGKILL (lease_ttl 3s, watchdog interval 0.5s)")  # fmt: skip
                _reconcile(dying, bed.api, bed.namespace, bed.images, release, pid)
            traffic = during.result()
    finally:
        if watchdog.poll() is None:
            watchdog.kill()
        watched, _ = watchdog.communicate()
        print(f"Traefik applied (its API):\n{timeline.describe()}")
    for release in (f"r{n + 2}" for n in range(ROUNDS)):
        assert f"the stage died: stage canary-1 of release {release}" in watched, watched
    lost = [
        f"{entry}  [Traefik: {timeline.at(float(entry.split()[0]))}]" for entry in traffic["lost"]
    ]
    assert lost == [], (
        "requests lost through Traefik:\n"
        + "\n".join(lost)
        + (f"\nTraefik applied:\n{timeline.describe()}")
    )
    built = [at for at, state in timeline.changes if state.startswith("weighted")]
    dropped = [(at, state) for at, state in timeline.changes if built and at > built[0]
               and not state.startswith("weighted")]  # fmt: skip
    assert dropped == [], f"Traefik dropped the TraefikService:\n{timeline.describe()}"
    # No request reached the canary once Traefik applied the last switch.
    assert traffic["last"]["2"] < switched_at[-1], (traffic, timeline.describe())
    assert traffic["versions"].get("1", 0) > 0, traffic


def _die(
    dying: Project, api: KubeApi, namespace: str, image: str, release: str
) -> tuple[float, int]:
    """canary-1 of ``release`` up to its hold at 10 %, SIGKILLed, switched by the watchdog,
    abandoned and refusing the next stage: the kill's time and the dead stage's pid."""
    stage = dying.start_stage("canary-1", image, release)
    try:
        wait_for(
            f"canary-1's hold at 10 % ({release})",
            lambda: _weights(api, namespace) == {"shop": 90, "shop-canary": 10},
            timeout=300,
        )
        leases = wait_for(
            "the stage's Lease",
            lambda: api.list(LEASES, namespace, f"{STAGE_LEASE_LABEL}=true"),
            timeout=60,
        )
        # The stage's own pytest process, as its Lease names it.
        pid = int(leases[0]["metadata"]["annotations"]["pytest-release/pid"])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        stage.communicate(timeout=60)
    finally:
        if stage.poll() is None:
            stage.kill()
        stage.communicate()
    # The watchdog's switch: the canary is no backend any more, its pods go.
    wait_for(
        "the watchdog's switch to 100% stable",
        lambda: _weights(api, namespace) == {"shop": 100},
        timeout=120,
    )
    wait_for("the canary's pods to go", lambda: not pods(api, namespace, "canary"), 120)
    # The watchdog judged nothing: the ledger still says running.
    last = ledger_runs(api, namespace)[-1]
    assert (last["stage"], last["outcome"]) == ("canary-1", "running"), last

    def abandoned() -> str | None:
        _, out = _pytest(dying, "--release-status", f"--release-id={release}")
        return out if "ABANDONED" in out else None

    status = wait_for("--release-status to show canary-1 abandoned", abandoned, timeout=120)
    assert f"pid {pid}" in status, status
    assert f"pytest --stage=rollback --release-id={release}" in status, status
    image_arg = f"--release-image={image}"
    rc, out = _pytest(dying, "--stage=canary-2", f"--release-id={release}", image_arg)
    assert rc == 4, out
    assert "a rollout stage was abandoned" in out, out
    return killed_at, pid


def _switched(timeline: TraefikTimeline, killed_at: float) -> float:
    """When Traefik applied a TraefikService without the canary after the kill."""
    for at, state in timeline.changes:
        if at > killed_at and state.startswith("weighted") and "shop-canary" not in state:
            return at
    raise AssertionError(f"Traefik never applied 100% stable:\n{timeline.describe()}")


def _reconcile(
    dying: Project,
    api: KubeApi,
    namespace: str,
    fault_images: dict[str, str],
    release: str,
    pid: int,
) -> None:
    """``--stage=rollback`` of the abandoned ``release`` and what it must leave."""
    rc, out = _pytest(
        dying, "--stage=rollback", f"--release-id={release}", "-p", "no:cacheprovider"
    )
    assert rc == 0, out
    assert _weights(api, namespace) == {"shop": 100}
    assert image_and_replicas(api, namespace, "shop-canary") is None
    assert not service_exists(api, namespace, "shop-canary")
    # The release never promoted: main stays on release 1.
    assert image_and_replicas(api, namespace, "shop") == (fault_images["1"], 1)
    runs = ledger_runs(api, namespace)
    dead = [r for r in runs if r["stage"] == "canary-1" and r["release_id"] == release]
    assert [r["outcome"] for r in dead] == ["rolled-back"], runs
    assert dead[0]["details"]["abandoned"]["pid"] == pid
    assert (runs[-1]["stage"], runs[-1]["outcome"]) == ("rollback", "passed")
    assert api.list(LEASES, namespace, f"{STAGE_LEASE_LABEL}=true") == []
    _, status = _pytest(dying, "--release-status", f"--release-id={release}")
    assert "rolled-back (abandoned)" in status, status
    assert "ABANDONED" not in status, status

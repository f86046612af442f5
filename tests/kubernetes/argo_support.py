"""What the Argo Rollouts tests on kwok (tests/kubernetes) and on the real node
(tests/kubernetes_node) share: the three stages of the generated Rollout, generating it
(``python -m pytest_release argo-rollouts``, ``web`` provider), starting a release under
the running controller, a stage's ledger entry and ``argo-status``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_release.canary.platforms.argo_rollouts.observe import ObservedRollout, RolloutObserver
from pytest_release.canary.platforms.kubernetes.client import DEPLOYMENTS, KubeApi
from pytest_release.ledger.ledger import Ledger, LedgerEntry
from tests.kubernetes.argo_crds import rollouts_controller


def argo_stages(hold_1: str, hold_2: str, interval: str) -> str:
    """``canary-1`` (10 %, held ``hold_1``), ``canary-2`` (50 %, ``hold_2``), both judged
    every ``interval``, and ``canary-3`` promoting (100 %): the Rollout's steps."""
    return f"""
[stages.canary-1]
gates = ["canary"]
requires = []
rollout = {{ action = "canary", replicas = 1, weight = 10, hold = "{hold_1}", interval = "{interval}" }}
[stages.canary-2]
gates = ["canary"]
requires = ["canary-1"]
rollout = {{ action = "canary", replicas = 1, weight = 50, hold = "{hold_2}", interval = "{interval}" }}
[stages.canary-3]
gates = ["canary"]
requires = ["canary-2"]
rollout = {{ action = "promote", replicas = 1, weight = 100, hold = "0s" }}
"""  # noqa: E501


def generate_rollout(project: Path, analysis_url: str, verdict_delay: float) -> Path:
    """``argo-rollouts --provider=web`` run in ``project`` (its pyproject.toml names the
    service); the path of the generated resources."""
    generated = subprocess.run(
        [sys.executable, "-m", "pytest_release", "argo-rollouts", "--provider=web",
         f"--analysis-url={analysis_url}", f"--verdict-delay={verdict_delay:g}",
         "-o", "argo.yaml"],
        cwd=project, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    return project / "argo.yaml"


@contextmanager
def controller_release(
    api: KubeApi,
    namespace: str,
    kubeconfig: Path,
    log: Path,
    image: tuple[str, str],
    canary_started: Callable[[ObservedRollout], bool] = lambda o: o.canary_hash is not None,
    timeout: float = 120,
) -> Iterator[tuple[RolloutObserver, ObservedRollout, str]]:
    """The controller watching ``namespace`` (the generated Rollout ``shop`` applied):
    once the first revision is stable, the release (``image`` = (container, image) in the
    Deployment's template) until ``canary_started``. Yields the observer, the stable
    reading and the canary's pod-template hash; the controller's log is printed when the
    block fails."""
    container, release = image
    observer = RolloutObserver(api, namespace, "shop")
    try:
        with rollouts_controller(kubeconfig, namespace, log):
            first = observer.wait_for(
                "the first revision to become the Rollout's stable version",
                lambda o: o.phase == "Healthy" and o.stable_hash is not None,
                timeout=timeout,
            )
            api.merge_patch(DEPLOYMENTS, namespace, "shop", {"spec": {"template": {
                "spec": {"containers": [{"name": container, "image": release}]}}}})  # fmt: skip
            canary = observer.wait_for(
                "the controller to start the canary", canary_started, timeout=timeout
            )
            assert canary.canary_hash is not None
            yield observer, first, canary.canary_hash
    except BaseException:
        print(log.read_text(errors="replace")[-8000:])
        raise


def aborted(observer: RolloutObserver, timeout: float) -> ObservedRollout:
    """Waits for the controller to abort the release and send all traffic back to stable."""
    return observer.wait_for(
        "the controller to abort and send all traffic back to stable",
        lambda o: (
            o.action == "aborted" and o.router_weights is not None and o.router_weights.canary == 0
        ),
        timeout=timeout,
    )


def ledger_entry(root: Path, release: str, stage: str) -> LedgerEntry:
    """The latest ledger entry of ``stage`` for ``release`` in the project ``root``."""
    entry = Ledger(root / ".pytest-release" / "ledger.json").latest(release, stage)
    assert entry is not None, f"no ledger entry of {stage} for {release}"
    return entry


def argo_status(root: Path, namespace: str, kubeconfig: Path, stage: str, release: str) -> None:
    """``argo-status`` records what the controller did in ``stage``'s ledger entry."""
    recorded = subprocess.run(
        [sys.executable, "-m", "pytest_release", "argo-status", f"--namespace={namespace}",
         "--rollout=shop", f"--kubeconfig={kubeconfig}", f"--stage={stage}",
         f"--release-id={release}"],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr

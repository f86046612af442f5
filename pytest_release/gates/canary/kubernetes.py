"""The canary gate's plugin for the Kubernetes platform (the engine knows no pytest): the
ledger backend, and the API server at the end of a stage.

* ``[tool.pytest-release.ledger] backend = "kubernetes"``: the ledger in a ConfigMap with a
  Lease as the rollout lock
  (:mod:`pytest_release.canary.platforms.kubernetes.ledger_store`), offered through
  ``pytest_release_ledger_store`` so the spine never imports a platform.
* Losing the API server during a canary stage interrupts the stage: when a stage whose
  canary gate runs on ``platform.type = "kubernetes"`` did not pass and the API server
  does not answer at its end, neither a verdict nor a rollback could be trusted; the
  stage is recorded as ``interrupted`` (ledger, JUnit, exit status) with the server's
  address, the error, and what to do once the cluster answers again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
    from pytest_release.config.plain_tables import LedgerConfig
    from pytest_release.ledger.ledger import LedgerStore
    from pytest_release.ledger.stage_run import StageOutcome, StageRun


def pytest_release_ledger_store(
    ledger: LedgerConfig, path: Path, rootdir: Path
) -> LedgerStore | None:
    if ledger.backend != "kubernetes":
        return None
    from pytest_release.canary.platforms.kubernetes.ledger_store import KubernetesLedgerStore

    return KubernetesLedgerStore.from_config(ledger, rootdir)


def _kubernetes_platforms(run: StageRun) -> list[KubernetesPlatformConfig]:
    from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
    from pytest_release.gates.canary.config import canary_gates

    found = []
    for _, gate in canary_gates(run):
        source = run.config.gates.get(gate.settings_from) if gate.settings_from else gate
        platform = getattr(source, "platform", None)
        if isinstance(platform, KubernetesPlatformConfig):
            found.append(platform)
    return found


def _unreachable(platform: KubernetesPlatformConfig, run: StageRun) -> str | None:
    from pytest_release.canary.platforms.kubernetes.client import (
        KubeApi,
        KubeApiError,
        KubeUnreachable,
    )

    try:
        api = KubeApi(platform, run.rootdir, min(platform.request_timeout, 5.0))
    except KubeApiError:
        return None  # a configuration problem, already reported by the gate's items
    try:
        api.serves("v1", "pods")
    except KubeUnreachable as exc:
        return str(exc)
    except KubeApiError:
        return None
    finally:
        api.close()
    return None


@pytest.hookimpl(trylast=True)
def pytest_release_stage_finished(
    config: pytest.Config, run: StageRun, outcome: StageOutcome
) -> None:
    from pytest_release.stage.session import get_stage_session

    if outcome.passed or outcome.result == "interrupted" or run.stage_config.rollout is None:
        return
    session = get_stage_session(config)
    if session is None:
        return
    for platform in _kubernetes_platforms(run):
        problem = _unreachable(platform, run)
        if problem is None:
            continue
        message = (
            f"stage '{run.stage}' interrupted: {problem}. The rollout could not be finished or "
            f"rolled back; the canary may still run in namespace '{platform.namespace}'. Once "
            f"the cluster answers, run the stage again or `pytest --stage=rollback`"
        )
        session.set_result("interrupted", message)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"canary: {message}", red=True)
        return

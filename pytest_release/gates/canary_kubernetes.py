"""Losing the Kubernetes API server during a canary stage interrupts the stage.

When a stage whose canary gate runs on ``platform.type = "kubernetes"`` did not pass and
the API server does not answer at its end, neither a verdict nor a rollback could be
trusted: the stage is recorded as ``interrupted`` (ledger, JUnit, exit status) with the
server's address, the error, and what to do once the cluster answers again.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

import pytest

from pytest_release.stage_session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.kubernetes.config import KubernetesPlatformConfig
    from pytest_release.stage import StageOutcome, StageRun

_CONFIGS: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIGS.append(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    with suppress(ValueError):
        _CONFIGS.remove(config)


def _kubernetes_platforms(run: StageRun) -> list[KubernetesPlatformConfig]:
    from pytest_release.gates.canary import CanaryGateConfig
    from pytest_release.kubernetes.config import KubernetesPlatformConfig

    found = []
    for name in run.plan.order:
        gate = run.config.gates.get(name)
        if not isinstance(gate, CanaryGateConfig):
            continue
        source = run.config.gates.get(gate.settings_from) if gate.settings_from else gate
        platform = getattr(source, "platform", None)
        if isinstance(platform, KubernetesPlatformConfig):
            found.append(platform)
    return found


def _unreachable(platform: KubernetesPlatformConfig, run: StageRun) -> str | None:
    from pytest_release.kubernetes.client import KubeApi, KubeApiError, KubeUnreachable

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
def pytest_release_stage_finished(run: StageRun, outcome: StageOutcome) -> None:
    if outcome.passed or outcome.result == "interrupted" or run.stage_config.rollout is None:
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
        for config in reversed(_CONFIGS):
            session = get_stage_session(config)
            if session is not None and session.run is run:
                session.set_result("interrupted", message)
                reporter = config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line(f"canary: {message}", red=True)
                return

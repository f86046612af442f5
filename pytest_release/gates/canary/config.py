"""The ``canary`` gate's table and the effective settings of a canary gate."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Literal, cast

import pytest
from pydantic import Field, ValidationInfo, field_validator

from pytest_release.canary.config import SamplerConfig
from pytest_release.canary.judge import JudgeConfig
from pytest_release.canary.registry import registry
from pytest_release.canary.settings import CanarySettings
from pytest_release.canary.slack import SlackConfig
from pytest_release.config.identity import DeploymentClaim
from pytest_release.config.plain_tables import RolloutConfig
from pytest_release.config.tables import GateConfig
from pytest_release.gates.canary.judge_tables import judge_model

if TYPE_CHECKING:
    from pytest_release.ledger.stage_run import StageRun

KIND: Literal["canary"] = "canary"

# The platform and router tables are the registered ones (built-ins and plug-ins alike,
# pytest_release/canary/registry.py): a union of their models, told apart by ``type``.
# mypy sees the built-ins' union (canary/config.py), pydantic the registered models.
_FOUND = registry()
# The judge table checks judge.evidence against the registered evidence sources and has
# each one's own table (judge_tables.py).
if TYPE_CHECKING:
    from pytest_release.canary.settings import PlatformConfig as PlatformTables
    from pytest_release.canary.settings import RouterConfig as RouterTables

    JudgeTables = JudgeConfig
else:
    PlatformTables = functools.reduce(operator.or_, _FOUND.platform_models())
    RouterTables = functools.reduce(operator.or_, _FOUND.router_models())
    JudgeTables = judge_model()
_PLATFORM_TYPES = ", ".join(repr(name) for name in _FOUND.platforms)
_ROUTER_TYPES = ", ".join(f"{name!r} ({r.summary})" for name, r in _FOUND.routers.items())


class CanaryGateConfig(GateConfig):
    """``[tool.pytest-release.gates.<name>]`` with ``kind = "canary"``."""

    kind: Literal["canary"] = KIND
    serial: bool = True
    settings_from: str | None = None
    """Another canary gate whose platform, router, sampler, judge and slack settings this gate uses
    (the default 'rollback' gate uses 'canary')."""
    platform: PlatformTables | None = Field(
        default=None,
        description="Where the stable and canary replicas run: a table with type = "
        f"{_PLATFORM_TYPES} (or a plug-in's). Required, unless settings_from names a gate "
        "that has one.",
    )
    router: RouterTables = Field(
        default_factory=lambda: cast("RouterTables", _FOUND.default_router()()),
        description="What splits the traffic between stable and canary: type = "
        f"{_ROUTER_TYPES} (or a plug-in's).",
    )
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    """What is measured during the hold: HTTP load, /health probes, replica status, optional
    Prometheus queries."""
    judge: JudgeTables = Field(default_factory=JudgeTables)
    """Thresholds and statistical comparison that turn the measurements into a pass, fail or
    insufficient verdict per interval and for the stage."""
    slack: SlackConfig | None = None
    """Slack notifications of the stage outcome; unset: none are sent."""
    rollback_on_insufficient: bool = True
    """Roll back when the evidence is insufficient (never a pass)."""
    verify_requests: int = Field(default=20, ge=1)
    """Requests through the router that check the main."""

    @field_validator("platform", "router", mode="before")
    @classmethod
    def _registered_type(cls, value: object, info: ValidationInfo) -> object:
        """A table whose ``type`` no installed platform or router registers gets one line
        naming the registered ones, not every member's complaint."""
        if not isinstance(value, dict) or "type" not in value:
            return value
        found = _FOUND.platforms if info.field_name == "platform" else _FOUND.routers
        if value["type"] in found:
            return value
        group = (
            "pytest_release.platforms"
            if info.field_name == "platform"
            else "pytest_release.routers"
        )
        raise ValueError(
            f"{info.field_name}.type = {value['type']!r} is not registered; registered: "
            f"{', '.join(repr(name) for name in found)} (a plug-in registers more under the "
            f"entry point group {group!r}: install it)"
        )

    def platform_needs(self) -> tuple[str, tuple[str, ...]]:
        """What a CI job running this gate's platform needs, as its registration says: the
        pytest-release extra ("" for none) and the credentials ("kubeconfig", "google")."""
        if self.platform is None:
            return "", ()
        entry = _FOUND.platform(self.platform.type)
        return entry.extra, entry.ci_credentials

    def deploys_release_image(self) -> bool:
        """True unless its platform observes a controller that deploys the release itself
        (platform.type = 'argo-rollouts': the stage runs for the canary's pod-template hash,
        no --image)."""
        return self.platform is None or not _FOUND.platform(self.platform.type).observes

    def deployment_claims(self) -> tuple[DeploymentClaim, ...]:
        """Its platform's and router's (none with settings_from: the other gate claims)."""
        if self.platform is None:
            return ()
        return (*self.platform.deployment_claims(), *self.router.deployment_claims(self.platform))


def canary_gates(run: StageRun) -> list[tuple[str, CanaryGateConfig]]:
    """The stage's canary gates, in run order."""
    return [
        (name, gate)
        for name in run.plan.order
        if isinstance(gate := run.config.gates[name], CanaryGateConfig)
    ]


def resolve_settings(gate_name: str, gate: CanaryGateConfig, run: StageRun) -> CanarySettings:
    """The gate's effective settings; a usage error names what is missing or does not fit."""
    from pytest_release.canary.registry import router_problem

    source = gate
    if gate.settings_from:
        other = run.config.gates.get(gate.settings_from)
        if not isinstance(other, CanaryGateConfig) or other.settings_from:
            raise pytest.UsageError(
                f"gates.{gate_name}.settings_from = {gate.settings_from!r} in "
                f"{run.config.source}: must name a gate of kind 'canary' that has its own "
                "settings"
            )
        source = other
    name = gate.settings_from or gate_name
    if source.platform is None:
        raise pytest.UsageError(
            f"gate '{gate_name}' (kind canary) of stage '{run.stage}' needs a platform: add "
            f"[tool.pytest-release.gates.{name}.platform] to {run.config.source}, e.g.\n"
            '  type = "local-process"\n'
            '  command = ["python3", "app.py", "--port", "{port}"]\n'
            '  stable_image = "v1"\n'
            'or type = "local-docker" with stable_image = "myapp:1.0"'
        )
    problem = router_problem(source.platform.type, source.router.type)
    if problem is None and not source.judge.http_checks and source.judge.max_restarts is None:
        problem = "judge.http_checks = false leaves judge.max_restarts as the only check: set it"
    if problem is None:
        problem = (
            _evidence_problem(source)
            or _slots_problem(source, run)
            or _idle_problem(source, run)
            or _observing_problem(source, run)
        )
    if problem is not None:
        raise pytest.UsageError(f"gates.{name} in {run.config.source}: {problem}")
    return CanarySettings(
        gate=gate_name,
        platform=source.platform,
        router=source.router,
        sampler=source.sampler,
        judge=source.judge,
        slack=source.slack,
        rollback_on_insufficient=source.rollback_on_insufficient,
        verify_requests=source.verify_requests,
    )


def _observing_problem(gate: CanaryGateConfig, run: StageRun) -> str | None:
    """An observing platform judges the steps its controller runs; rolling back and
    switching blue/green are the controller's."""
    from pytest_release.canary.controller import OBSERVED_ACTIONS

    rollout = run.stage_config.rollout
    if gate.platform is None or rollout is None or rollout.action in OBSERVED_ACTIONS:
        return None
    if not registry().platform(gate.platform.type).observes:
        return None
    allowed = " or ".join(repr(a) for a in OBSERVED_ACTIONS)
    return (
        f"stages.{run.stage}.rollout.action = {rollout.action!r}: platform.type = "
        f"{gate.platform.type!r} observes a controller that deploys, promotes and rolls back "
        f"itself, so a stage can only judge its steps (action {allowed}); "
        "roll back with the controller (kubectl argo rollouts abort)"
    )


def _idle_problem(gate: CanaryGateConfig, run: StageRun) -> str | None:
    """Blue/green judges the idle colour while the router sends it nothing: only the
    sampler's direct requests (or platform status) can reach it."""
    rollout = run.stage_config.rollout
    if rollout is None or rollout.action != "bluegreen-deploy" or not gate.judge.http_checks:
        return None
    if "sampler" in gate.judge.evidence and gate.sampler.direct_rate > 0:
        return None
    return (
        f"stages.{run.stage} judges the idle colour of a blue/green deploy, which the router "
        f"sends no traffic: judge.evidence = {list(gate.judge.evidence)!r} with "
        f"sampler.direct_rate = {gate.sampler.direct_rate:g} gives it no request; include "
        "'sampler' in judge.evidence with sampler.direct_rate > 0"
    )


def _evidence_problem(gate: CanaryGateConfig) -> str | None:
    """HTTP checks with no request to judge: every interval would be insufficient."""
    sampler = gate.sampler
    platform = gate.platform
    evidence = gate.judge.evidence
    found = registry()
    for source in evidence:
        needs = found.evidence_source(source).router_capability
        having = [n for n, r in found.routers.items() if getattr(r.capabilities, needs, True)]
        if needs and gate.router.type not in having:
            return (
                f"judge.evidence = {list(evidence)!r}: {source} evidence reads the router's "
                f"own per-version {needs}, which router.type = {gate.router.type!r} does not "
                f"have (routers with {needs}: {', '.join(repr(n) for n in having)}); use "
                "'sampler' (and Prometheus queries with Traefik's metrics, see "
                "docs/canary-metrics.md)"
            )
    # A platform whose replicas this process may not reach says so, and how to fix it
    # (its table's ``unreachable_replicas``: Kubernetes without sample_pods).
    unreachable = getattr(platform, "unreachable_replicas", None)
    reason = unreachable() if gate.judge.http_checks and callable(unreachable) else None
    if isinstance(reason, str):
        return reason
    if (
        gate.judge.http_checks
        and "sampler" in evidence
        and sampler.rate == 0
        and sampler.direct_rate == 0
    ):
        queries = "" if sampler.prometheus is None else " (Prometheus queries are not HTTP checks)"
        return (
            "sampler: rate = 0 and direct_rate = 0 send no request, so the judge's HTTP checks "
            f"have nothing to judge{queries}: set sampler.rate (requests/s through the router) "
            "or sampler.direct_rate above 0, judge real traffic with judge.evidence = "
            "['router'], or set judge.http_checks = false to judge on replica status and "
            "sampler.prometheus queries only"
        )
    return None


def _slots_problem(gate: CanaryGateConfig, run: StageRun) -> str | None:
    """Replicas the stage puts behind a router beyond its server slots (HAProxy's)."""
    rollout = run.stage_config.rollout
    # A router with server slots (HAProxy) in front of a platform with a stable size.
    slots = getattr(gate.router, "slots", None)
    stable = getattr(gate.platform, "stable_replicas", None)
    if rollout is None or not isinstance(slots, int) or not isinstance(stable, int):
        return None
    key = f"stages.{run.stage}.rollout.replicas"
    if rollout.action in ("canary", "bluegreen-deploy"):
        needed = stable + rollout.replicas
        if needed > slots:
            return (
                f"router.slots = {slots} is too small: the stage routes {stable} "
                f"stable (platform.stable_replicas) + {rollout.replicas} canary ({key}) = "
                f"{needed} replicas; raise router.slots to at least {needed} (at most 64) or "
                "use fewer replicas"
            )
    elif rollout.replicas > slots:
        return (
            f"router.slots = {slots} is too small for {rollout.replicas} replicas ({key}): raise "
            f"router.slots to at least {rollout.replicas} (at most 64) or use fewer replicas"
        )
    return None


def observes(settings: CanarySettings) -> bool:
    """The gate's platform observes an external controller (``PlatformPlugin.observes``):
    it runs the observing steps and never writes or rolls back."""
    return registry().platform(settings.platform.type).observes


def rollout_config(run: StageRun, gate_name: str) -> RolloutConfig:
    """The stage's rollout step, checked for what the canary gate needs."""
    rollout = run.stage_config.rollout
    if rollout is None:
        raise pytest.UsageError(
            f"stage '{run.stage}' runs the canary gate '{gate_name}' but has no rollout; add "
            f"[tool.pytest-release.stages.{run.stage}.rollout] (action, replicas, weight, hold, "
            f"interval) to {run.config.source}"
        )
    if rollout.action in ("canary", "bluegreen-deploy"):
        if rollout.interval <= 0:
            raise pytest.UsageError(
                f"stages.{run.stage}.rollout.interval = {rollout.interval:g}: must be more than "
                "0 seconds"
            )
        if rollout.replicas < 1:
            raise pytest.UsageError(
                f"stages.{run.stage}.rollout.replicas = {rollout.replicas}: a canary needs at "
                "least 1 replica"
            )
    if rollout.action == "bluegreen-switch" and rollout.hold > 0:
        raise pytest.UsageError(
            f"stages.{run.stage}.rollout.hold = {rollout.hold:g}s: action 'bluegreen-switch' "
            "does not judge (the idle colour is judged in the bluegreen-deploy stage before "
            "it; smoke tests after the switch belong to a later stage); set hold = 0"
        )
    if rollout.action == "promote":
        if rollout.replicas < 1:
            raise pytest.UsageError(
                f"stages.{run.stage}.rollout.replicas = {rollout.replicas}: the main deployment "
                "needs at least 1 replica"
            )
        if rollout.hold > 0:
            raise pytest.UsageError(
                f"stages.{run.stage}.rollout.hold = {rollout.hold:g}s: action 'promote' does not "
                "judge (judge in the canary stages before it); set hold = 0"
            )
    return rollout

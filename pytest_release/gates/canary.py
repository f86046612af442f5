"""The ``canary`` gate: deploy, shift traffic, judge live, promote or roll back.

A gate of kind ``canary`` performs the rollout step of its stage
(``[tool.pytest-release.stages.<stage>.rollout]``) on the configured platform and router.
Its items are the steps, in order (the gate is ``serial``: one process, also under
xdist):

action ``canary`` (canary-1, canary-2)
    ``deploy``      N canary replicas of ``--image`` running and ready (status read back)
    ``traffic``     router split stable/canary read back equal to the stage's weight
    ``health@<t>``  one per interval of the hold: samples, judged (properties: value,
                    threshold, window, sample counts per check); after a failing verdict
                    the later intervals are skipped
    ``verdict``     the stage verdict; insufficient evidence is never a pass
    ``rollback:*``  only when the verdict is not a pass: ``traffic`` (100 % to main, read
                    back), ``canary`` (canary drained and removed), ``main`` (main on the
                    previous version, ready, serving through the router)
action ``promote`` (canary-3)
    ``promote:deploy``, ``promote:traffic`` (100 % to the new version), ``promote:main``
    (old main drained and stopped, new main with N replicas, canary group empty), then
    ``rollback:*`` if a promote step failed
action ``rollback`` (stage rollback)
    ``rollback:traffic``, ``rollback:canary``, ``rollback:main``

SIGINT/SIGTERM during the stage (the spine turns SIGTERM into KeyboardInterrupt), or any
other failure of the stage, rolls back in :func:`pytest_release_stage_finished` on the
controller (the platform and router state is on disk, so any process can).  The ledger
says ``rolled-back`` (or ``interrupted``); Slack is told passed/failed/rolled-back.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
from pydantic import Field

from pytest_release.canary.haproxy import HAProxyConfig
from pytest_release.canary.judge import JudgeConfig
from pytest_release.canary.local_platform import LocalPlatformConfig
from pytest_release.canary.sampler import SamplerConfig
from pytest_release.canary.slack import SlackConfig
from pytest_release.config import GateConfig, RolloutConfig
from pytest_release.gate_node import GateCheckFailed, GateItem, GateNode
from pytest_release.kubernetes.config import (
    GatewayRouterConfig,
    KubernetesPlatformConfig,
    TraefikRouterConfig,
    combination_problem,
)
from pytest_release.stage_session import get_stage_session

if TYPE_CHECKING:
    from pytest_release.canary.judge import CanaryVerdict, Judge
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.sampler import Sampler
    from pytest_release.kubernetes.rollout import KubernetesRollout
    from pytest_release.stage import StageOutcome, StageRun
    from pytest_release.stage_session import StageSession

KIND: Literal["canary"] = "canary"
RESULT_FILE = "canary-{gate}.json"
Step = Literal[
    "deploy",
    "traffic",
    "health",
    "verdict",
    "promote:deploy",
    "promote:traffic",
    "promote:main",
    "rollback:traffic",
    "rollback:canary",
    "rollback:main",
]


class CanaryGateConfig(GateConfig):
    """``[tool.pytest-release.gates.<name>]`` with ``kind = "canary"``."""

    kind: Literal["canary"] = KIND
    serial: bool = True
    settings_from: str | None = Field(
        default=None,
        description="Another canary gate whose platform, router, sampler, judge and slack "
        "settings this gate uses (the default 'rollback' gate uses 'canary').",
    )
    platform: LocalPlatformConfig | KubernetesPlatformConfig | None = Field(
        default=None,
        description="Where the stable and canary replicas run: a table with type = "
        "'local-process', 'local-docker' or 'kubernetes'. Required, unless settings_from "
        "names a gate that has one.",
    )
    router: HAProxyConfig | TraefikRouterConfig | GatewayRouterConfig = Field(
        default_factory=HAProxyConfig,
        description="What splits the traffic between stable and canary: type = 'haproxy' "
        "(default, a local HAProxy; local platforms only), 'traefik' or 'gateway' "
        "(kubernetes platform only).",
    )
    sampler: SamplerConfig = Field(
        default_factory=SamplerConfig,
        description="What is measured during the hold: HTTP load, /health probes, replica "
        "status, optional Prometheus queries.",
    )
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig,
        description="Thresholds and statistical comparison that turn the measurements into "
        "a pass, fail or insufficient verdict per interval and for the stage.",
    )
    slack: SlackConfig | None = Field(
        default=None,
        description="Slack notifications of the stage outcome; unset: none are sent.",
    )
    rollback_on_insufficient: bool = Field(
        default=True, description="Roll back when the evidence is insufficient (never a pass)."
    )
    verify_requests: int = Field(
        default=20, ge=1, description="Requests through the router that check the main."
    )


@dataclass(frozen=True)
class Settings:
    """The effective settings of a canary gate (after ``settings_from``)."""

    gate: str
    platform: LocalPlatformConfig | KubernetesPlatformConfig
    router: HAProxyConfig | TraefikRouterConfig | GatewayRouterConfig
    sampler: SamplerConfig
    judge: JudgeConfig
    slack: SlackConfig | None
    rollback_on_insufficient: bool
    verify_requests: int


def resolve_settings(gate_name: str, gate: CanaryGateConfig, run: StageRun) -> Settings:
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
    if source.platform is None:
        name = gate.settings_from or gate_name
        raise pytest.UsageError(
            f"gate '{gate_name}' (kind canary) of stage '{run.stage}' needs a platform: add "
            f"[tool.pytest-release.gates.{name}.platform] to {run.config.source}, e.g.\n"
            '  type = "local-process"\n'
            '  command = ["python3", "app.py", "--port", "{port}"]\n'
            '  stable_image = "v1"\n'
            'or type = "local-docker" with stable_image = "myapp:1.0"'
        )
    problem = combination_problem(source.platform, source.router)
    if problem is None and not source.judge.http_checks and source.judge.max_restarts is None:
        problem = "judge.http_checks = false leaves judge.max_restarts as the only check: set it"
    if problem is not None:
        name = gate.settings_from or gate_name
        raise pytest.UsageError(f"gates.{name} in {run.config.source}: {problem}")
    return Settings(
        gate=gate_name,
        platform=source.platform,
        router=source.router,
        sampler=source.sampler,
        judge=source.judge,
        slack=source.slack,
        rollback_on_insufficient=source.rollback_on_insufficient,
        verify_requests=source.verify_requests,
    )


def _rollout_config(run: StageRun, gate_name: str) -> RolloutConfig:
    rollout = run.stage_config.rollout
    if rollout is None:
        raise pytest.UsageError(
            f"stage '{run.stage}' runs the canary gate '{gate_name}' but has no rollout; add "
            f"[tool.pytest-release.stages.{run.stage}.rollout] (action, replicas, weight, hold, "
            f"interval) to {run.config.source}"
        )
    if rollout.action == "canary":
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


def interval_windows(hold: float, interval: float) -> list[tuple[float, float]]:
    """(start, end) offsets of the judged intervals of a hold."""
    count = max(1, math.ceil(hold / interval - 1e-9)) if hold > 0 else 0
    return [(k * interval, min((k + 1) * interval, hold)) for k in range(count)]


def _offset(seconds: float) -> str:
    """``health@<t>`` labels: ``30s``, ``90s``, ``1m``, ``15m``."""
    return f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"


def _source(run: StageRun, gate_name: str) -> tuple[Path | None, int | None]:
    path = Path(run.config.source)
    if not path.is_file():
        return None, None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return path, None
    needles = (f"gates.{gate_name}]", f"gates.{gate_name}.", f'gates."{gate_name}"')
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("[") and any(n in line for n in needles):
            return path, number
    return path, None


# -- hooks ----------------------------------------------------------------------------------
def pytest_release_gate_kinds() -> dict[str, type[GateConfig]]:
    return {KIND: CanaryGateConfig}


def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
    gate = gate_node.gate
    if not isinstance(gate, CanaryGateConfig):
        return None
    run = gate_node.run
    rollout = _rollout_config(run, gate_node.gate_name)
    resolve_settings(gate_node.gate_name, gate, run)
    path, line = _source(run, gate_node.gate_name)

    def item(name: str, step: Step, window: tuple[float, float] | None = None) -> CanaryItem:
        return CanaryItem.from_parent(
            gate_node, name=name, step=step, window=window, source_path=path, source_line=line
        )

    items: list[pytest.Item] = []
    if rollout.action == "canary":
        items += [item("deploy", "deploy"), item("traffic", "traffic")]
        for start, end in interval_windows(rollout.hold, rollout.interval):
            items.append(item(f"health@{_offset(end)}", "health", (start, end)))
        items.append(item("verdict", "verdict"))
    elif rollout.action == "promote":
        items += [
            item("promote:deploy", "promote:deploy"),
            item("promote:traffic", "promote:traffic"),
            item("promote:main", "promote:main"),
        ]
    items += [
        item("rollback:traffic", "rollback:traffic"),
        item("rollback:canary", "rollback:canary"),
        item("rollback:main", "rollback:main"),
    ]
    return items


class CanaryItem(GateItem):
    """One step of the rollout; the gate's controller keeps the state between steps."""

    def __init__(
        self, *, step: Step, window: tuple[float, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.window = window

    def runtest(self) -> None:
        controller_for(self).execute(self)


# -- the controller ---------------------------------------------------------------------------
_CONTROLLERS = pytest.StashKey[dict[str, "Controller"]]()


def _stage_session(config: pytest.Config) -> StageSession:
    session = get_stage_session(config)
    if session is None:  # pragma: no cover - the gate exists only in stage mode
        raise RuntimeError("the canary gate runs only with --stage")
    return session


def controller_for(item: CanaryItem) -> Controller:
    parent = item.parent
    assert isinstance(parent, GateNode)
    controllers = item.config.stash.setdefault(_CONTROLLERS, {})
    controller = controllers.get(parent.gate_name)
    if controller is None:
        assert isinstance(parent.gate, CanaryGateConfig)
        settings = resolve_settings(parent.gate_name, parent.gate, parent.run)
        controller = Controller(item.config, parent.run, settings)
        controllers[parent.gate_name] = controller
    return controller


def build_rollout(run: StageRun, settings: Settings) -> Rollout | KubernetesRollout:
    from pytest_release.canary.haproxy import HAProxyRouter
    from pytest_release.canary.local_platform import LocalPlatform
    from pytest_release.canary.rollout import Rollout

    if isinstance(settings.platform, KubernetesPlatformConfig):
        from pytest_release.kubernetes.rollout import build_kubernetes_rollout

        assert not isinstance(settings.router, HAProxyConfig)  # see combination_problem
        return build_kubernetes_rollout(settings.platform, settings.router, run.rootdir)
    assert isinstance(settings.router, HAProxyConfig)
    platform = LocalPlatform(settings.platform, run.rootdir)
    router = HAProxyRouter(settings.router, platform.state_dir)
    return Rollout(
        platform,
        router,
        stable_image=settings.platform.stable_image,
        stable_replicas=settings.platform.stable_replicas,
    )


@dataclass
class Controller:
    """Per-process state of one canary gate across its items."""

    config: pytest.Config
    run: StageRun
    settings: Settings
    main_before: str | None = None
    problem: str | None = None  # why the canary is not judged / not promoted
    verdicts: list[CanaryVerdict] = field(default_factory=list)
    stage_verdict: CanaryVerdict | None = None
    touched: bool = False  # a step changed the platform or the router
    rolled_back: bool = False
    rollback_message: str = ""
    rollback_errors: list[str] = field(default_factory=list)
    sampler: Sampler | None = None
    judge: Judge | None = None
    hold_start: float | None = None
    progress: Any = None
    reported: bool = False

    @property
    def rollout_config(self) -> RolloutConfig:
        rollout = self.run.stage_config.rollout
        assert rollout is not None
        return rollout

    @property
    def image(self) -> str:
        image = self.run.image
        if not image:
            raise GateCheckFailed(
                f"stage '{self.run.stage}' deploys the release image, but no image was given: "
                "pass --image=REF (for platform.type 'local-process' the version the command "
                "template receives as {image})"
            )
        return image

    @property
    def stage_session(self) -> StageSession:
        return _stage_session(self.config)

    def rollout(self) -> Rollout | KubernetesRollout:
        return build_rollout(self.run, self.settings)

    # -- dispatch --------------------------------------------------------------------------
    def execute(self, item: CanaryItem) -> None:
        try:
            self._execute(item)
        finally:
            # The controller process reads this at the end of the stage (xdist: the
            # items ran on a worker): what failed, whether it was rolled back.
            with suppress(OSError):
                self._write_result()

    def _execute(self, item: CanaryItem) -> None:
        step = item.step
        if step.startswith("rollback:"):
            self._rollback_step(item)
            return
        if self.problem is not None:
            pytest.skip(f"not run: {self.problem}")
        try:
            getattr(self, "_" + step.replace(":", "_"))(item)
        except GateCheckFailed as exc:
            self.problem = self.problem or f"{item.name} failed"
            self._stop_sampler()
            raise exc
        except Exception as exc:
            from pytest_release.canary.platform import PlatformError
            from pytest_release.canary.rollout import RolloutError
            from pytest_release.canary.router import RouterError

            self.problem = self.problem or f"{item.name} failed"
            self._stop_sampler()
            if isinstance(exc, PlatformError | RouterError | RolloutError):
                raise GateCheckFailed(f"{item.name}: {exc}") from None
            raise

    # -- canary steps ----------------------------------------------------------------------
    def _deploy(self, item: CanaryItem) -> None:
        image = self.image
        rollout = self.rollout()
        self.touched = True
        main = rollout.ensure_main()
        self.main_before = main.stable_image
        replicas = self.rollout_config.replicas
        status = rollout.deploy_canary(image, replicas)
        canary = status.group("canary")
        item.user_properties += [
            ("canary.image", image),
            ("canary.replicas", str(len(canary))),
            ("canary.endpoints", ", ".join(status.endpoints("canary"))),
            ("main.image", str(status.stable_image)),
            ("main.replicas", str(len(status.group("stable")))),
        ]
        problems = []
        if len(canary) != replicas:
            problems.append(f"{len(canary)} canary replica(s) run, expected {replicas}")
        if status.canary_image != image:
            problems.append(f"the canary runs {status.canary_image!r}, expected {image!r}")
        if status.not_ready("canary") or status.not_ready("stable"):
            problems.append("replicas are not running and ready")
        if problems:
            raise GateCheckFailed(
                "canary deployment is not as expected: "
                + "; ".join(problems)
                + f"\nreplicas: {status.describe()}"
            )

    def _traffic(self, item: CanaryItem) -> None:
        weight = self.rollout_config.weight
        weights = self.rollout().shift(weight)
        item.user_properties += [
            ("router.stable_percent", str(weights.stable)),
            ("router.canary_percent", str(weights.canary)),
            ("router.canary_members", ", ".join(weights.canary_members)),
        ]
        if (weights.stable, weights.canary) != (100 - weight, weight):
            raise GateCheckFailed(f"router applies {weights}, expected canary {weight}%")

    def _start_hold(self) -> None:
        from pytest_release.canary.judge import Judge
        from pytest_release.canary.sampler import Sampler, Targets

        rollout = self.rollout()
        status = rollout.platform.status()
        names = {r.endpoint: r.name for r in status.replicas}
        for server, endpoint in rollout.router.server_endpoints().items():
            if endpoint in names:
                names[server] = names[endpoint]
        targets = Targets(
            router_url=rollout.router.url,
            stable=status.endpoints("stable"),
            canary=status.endpoints("canary"),
            names=names,
        )
        if isinstance(self.settings.platform, KubernetesPlatformConfig):
            # Pod IPs are the cluster's network, not this machine's: judge on pod status.
            targets = Targets(router_url=None, stable=(), canary=(), names=names)
        platform = rollout.platform
        self.sampler = Sampler(
            self.settings.sampler,
            targets,
            status=lambda: platform.status().replicas,
            health_path=self.settings.platform.health_path,
        )
        looks = len(interval_windows(self.rollout_config.hold, self.rollout_config.interval))
        self.judge = Judge(self.settings.judge, planned_looks=max(1, looks))
        self.sampler.start()
        self.hold_start = time.time()
        self.progress = _make_progress(self.config, self.rollout_config.hold)

    def _health(self, item: CanaryItem) -> None:
        from pytest_release.canary.sampler import check_metrics

        if self.sampler is None:
            self._start_hold()
        assert self.sampler is not None
        assert self.judge is not None
        assert self.hold_start is not None
        assert item.window is not None
        start = self.hold_start + item.window[0]
        end = self.hold_start + item.window[1]
        while (remaining := end - time.time()) > 0:
            time.sleep(min(0.25, remaining))
            _progress_update(self, start, time.time() - self.hold_start)
        # Requests started in the window count in it: wait for the ones still in flight.
        self.sampler.settle(end)
        samples = self.sampler.samples(start, end)
        statuses = self.sampler.statuses(start, end)
        history = self.sampler.samples(None, end)
        verdict = self.judge.judge_interval(
            samples, statuses, start, end, history, look=len(self.verdicts) + 1
        )
        self.verdicts.append(verdict)
        _progress_interval(self, verdict)
        item.user_properties += verdict.properties()
        failures: list[str] = []
        prometheus = self.settings.sampler.prometheus
        if prometheus is not None:
            failures, props = check_metrics(self.sampler.metrics(start, end), prometheus)
            item.user_properties += props
        for error in self.sampler.errors():
            item.user_properties.append(("sampler.error", error))
        last = item.window[1] >= self.rollout_config.hold - 1e-9
        if verdict.verdict == "fail" or failures:
            parts = [verdict.failure_message()] if verdict.verdict == "fail" else []
            message = "\n".join(parts + failures)
            self.problem = f"{item.name} failed: judging stopped"
            self._end_hold()
            raise GateCheckFailed(message)
        if last:
            self._end_hold()
        if verdict.verdict == "insufficient":
            pytest.skip(verdict.failure_message())

    def _end_hold(self) -> None:
        """Stop sampling; judge the stage; plot and summary (once)."""
        from pytest_release.canary.judge import Judge

        self._stop_sampler()
        if self.stage_verdict is None:
            judge = self.judge or Judge(self.settings.judge)
            self.stage_verdict = judge.judge_stage(self.verdicts)
        self._write_reports()

    def _verdict(self, item: CanaryItem) -> None:
        self._end_hold()
        verdict = self.stage_verdict
        assert verdict is not None
        item.user_properties += verdict.properties()
        if verdict.verdict == "pass":
            return
        if verdict.verdict == "insufficient":
            self.problem = "insufficient evidence"
            raise GateCheckFailed(
                verdict.failure_message()
                + "\ninsufficient evidence is never a pass: send more traffic (sampler.rate, "
                "sampler.direct_rate), hold longer, or lower judge.min_requests"
            )
        self.problem = "the canary failed"
        raise GateCheckFailed(verdict.failure_message())

    # -- promote steps ---------------------------------------------------------------------
    def _promote_deploy(self, item: CanaryItem) -> None:
        self._deploy(item)

    def _promote_traffic(self, item: CanaryItem) -> None:
        weights = self.rollout().shift(100)
        item.user_properties += [
            ("router.stable_percent", str(weights.stable)),
            ("router.canary_percent", str(weights.canary)),
        ]
        if (weights.stable, weights.canary) != (0, 100):
            raise GateCheckFailed(f"router applies {weights}, expected canary 100%")

    def _promote_main(self, item: CanaryItem) -> None:
        rollout = self.rollout()
        replicas = self.rollout_config.replicas
        rollout.promote(self.image, replicas)
        check = rollout.verify_main(self.image, replicas, self.settings.verify_requests)
        item.user_properties += [
            ("main.image", self.image),
            ("main.replicas", str(len(check.status.group("stable")))),
            ("main.previous_image", str(check.status.previous_image)),
            ("router.stable_percent", str(check.weights.stable)),
            ("router.requests_checked", str(check.requests)),
        ]

    # -- rollback --------------------------------------------------------------------------
    def rollback_needed(self) -> str | None:
        action = self.rollout_config.action
        if action == "rollback":
            return "stage rollback"
        if self.problem is None or not self.touched:
            return None
        if self.problem == "insufficient evidence" and not self.settings.rollback_on_insufficient:
            return None
        return self.problem

    def _rollback_step(self, item: CanaryItem) -> None:
        reason = self.rollback_needed()
        if reason is None:
            if self.problem is not None:
                pytest.skip(f"nothing to roll back: nothing was deployed ({self.problem})")
            pytest.skip("nothing to roll back: the rollout step passed")
        from pytest_release.canary.platform import PlatformError
        from pytest_release.canary.rollout import RolloutError
        from pytest_release.canary.router import RouterError

        self._stop_sampler()
        rollout = self.rollout()
        try:
            with _signals_deferred():
                self._rollback_action(item, rollout)
        except (PlatformError, RouterError, RolloutError) as exc:
            self.rollback_errors.append(f"{item.name}: {exc}")
            raise GateCheckFailed(f"{item.name}: {exc}") from None

    def _target_main(self, rollout: Rollout | KubernetesRollout) -> str | None:
        if self.rollout_config.action == "rollback":
            # With --image, only a main deployment running that image is rolled back (a
            # release whose canary never got promoted leaves the main as it is).
            status = rollout.platform.status()
            return rollout.previous_for(status, self.run.image) or status.stable_image
        if self.main_before is not None:
            return self.main_before
        status = rollout.platform.status()
        return rollout.previous_for(status, self.run.image) or status.stable_image

    def _rollback_action(self, item: CanaryItem, rollout: Rollout | KubernetesRollout) -> None:
        if item.step == "rollback:traffic":
            weights = rollout.rollback_traffic()
            item.user_properties += [
                ("router.stable_percent", str(weights.stable)),
                ("router.canary_percent", str(weights.canary)),
            ]
            if (weights.stable, weights.canary) != (100, 0):
                raise GateCheckFailed(f"router applies {weights}, expected stable 100%")
        elif item.step == "rollback:canary":
            status = rollout.remove_canary()
            weights = rollout.router.weights()
            if status.group("canary") or weights.canary_members:
                raise GateCheckFailed(
                    f"canary replicas remain after removal: platform {status.describe()}; "
                    f"router canary members {list(weights.canary_members)}"
                )
            item.user_properties.append(("canary.replicas", "0"))
        else:
            target = self._target_main(rollout)
            if target is not None:
                rollout.restore_main(target)
            check = rollout.verify_main(target, None, self.settings.verify_requests)
            self.rolled_back = True
            item.user_properties += [
                ("main.image", str(check.status.stable_image)),
                ("main.replicas", str(len(check.status.group("stable")))),
                ("router.requests_checked", str(check.requests)),
            ]
            if self.rollout_config.action != "rollback":
                reason = self.rollback_needed() or "rolled back"
                self.rollback_message = (
                    f"stage '{self.run.stage}' rolled back ({reason}); main deployment on "
                    f"{check.status.stable_image}"
                )
                self.stage_session.set_result("rolled-back", self.rollback_message)
        self._write_result()

    # -- reports ---------------------------------------------------------------------------
    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.progress is not None:
            with suppress(Exception), _terminal(self.config):
                self.progress.close()
            self.progress = None

    def _write_reports(self) -> None:
        if self.reported or self.sampler is None:
            self._write_result()
            return
        self.reported = True
        samples = self.sampler.samples()
        try:
            from pytest_release.canary.plot import markdown_summary, write_plot

            path = self.run.reports_dir / f"{self.run.stage}-canary.svg"
            write_plot(path, samples, self.verdicts, f"{self.run.stage}: {self.run.image}")
            if os.environ.get("GITHUB_ACTIONS") == "true" and os.environ.get("GITHUB_STEP_SUMMARY"):
                summary = markdown_summary(
                    self.verdicts,
                    samples,
                    svg_path=self.run.relative(path),
                    title=f"Canary metrics: {self.run.stage}",
                    stage_verdict=self.stage_verdict,
                )
                text = self.stage_session.redact(summary)
                with Path(os.environ["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as fh:
                    fh.write(text + "\n")
        finally:
            self._write_result()

    def _write_result(self) -> None:
        """What the controller process needs at the end of the stage (Slack, rollback)."""
        data = {
            "verdict": self.stage_verdict.to_dict() if self.stage_verdict else None,
            "failed_intervals": [v.to_dict() for v in self.verdicts if v.verdict == "fail"],
            "problem": self.problem,
            "rolled_back": self.rolled_back,
            "rollback_message": self.rollback_message,
            "rollback_errors": self.rollback_errors,
        }
        path = self.stage_session.run_dir.path / RESULT_FILE.format(gate=self.settings.gate)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)


# -- terminal progress (engineer JUDGE's HoldProgress) --------------------------------------
@contextmanager
def _terminal(config: pytest.Config) -> Iterator[None]:
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


def _make_progress(config: pytest.Config, hold: float) -> Any:
    if hasattr(config, "workerinput"):
        return None  # a worker's terminal is not shown
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None
    from pytest_release.canary.progress import HoldProgress

    is_tty = bool(getattr(reporter, "isatty", False))
    with _terminal(config):
        reporter.ensure_newline()
        return HoldProgress(reporter, hold, is_tty)


def _progress_update(controller: Controller, window_start: float, elapsed: float) -> None:
    if controller.progress is None or controller.sampler is None:
        return
    from pytest_release.canary.stats import interval_stats

    samples = controller.sampler.samples(window_start, None)
    with _terminal(controller.config):
        controller.progress.update(
            elapsed, interval_stats(samples, "canary"), interval_stats(samples, "stable")
        )


def _progress_interval(controller: Controller, verdict: CanaryVerdict) -> None:
    if controller.progress is not None:
        with _terminal(controller.config):
            controller.progress.interval_done(verdict)


# -- signals ------------------------------------------------------------------------------------
@contextmanager
def _signals_deferred(*, reraise: bool = True) -> Iterator[list[int]]:
    """SIGINT/SIGTERM wait until the block ends (a rollback must not stop half-way); then
    they interrupt the session (``reraise``) or, at the very end of it, are dropped."""
    received: list[int] = []

    def defer(signum: int, frame: Any) -> None:
        received.append(signum)

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, defer)
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received and reraise:
            raise KeyboardInterrupt(f"received signal {received[0]} during a rollback step")


# -- end of the stage (controller) ----------------------------------------------------------
def _canary_gates(run: StageRun) -> list[tuple[str, CanaryGateConfig]]:
    return [
        (name, gate)
        for name in run.plan.order
        if isinstance(gate := run.config.gates[name], CanaryGateConfig)
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Check the canary gates' settings before the stage starts (a usage error, before the
    ledger records a run), and redact the Slack webhook everywhere (it is a secret even
    when not listed in ``secrets``)."""
    stage_session = get_stage_session(session.config)
    if stage_session is None:
        return
    from pytest_release.redact import Redactor

    extra = []
    for name, gate in _canary_gates(stage_session.run):
        _rollout_config(stage_session.run, name)
        settings = resolve_settings(name, gate, stage_session.run)
        if settings.slack is not None:
            extra.append(os.environ.get(settings.slack.webhook_env, ""))
            if settings.slack.webhook_url is not None:
                extra.append(settings.slack.webhook_url.get_secret_value())
    values = [v for v in extra if len(v) >= 4]
    if values:
        known = {*stage_session.redact.values, *values}
        redactor = Redactor(values=tuple(sorted(known, key=len, reverse=True)))
        stage_session.redact = redactor
        stage_session.recorder.redact = redactor


def pytest_release_stage_finished(run: StageRun, outcome: StageOutcome) -> None:
    gates = _canary_gates(run)
    if not gates or run.stage_config.rollout is None:
        return
    config = _config_of(run)
    stage_session = _stage_session(config) if config is not None else None
    for name, gate in gates:
        try:
            settings = resolve_settings(name, gate, run)
        except pytest.UsageError:
            continue
        local = (config.stash.get(_CONTROLLERS, {}) if config is not None else {}).get(name)
        if local is not None:
            if not local.reported and local.sampler is not None:
                with suppress(Exception):
                    local._end_hold()
            local._stop_sampler()
        result = _read_result(stage_session, name)
        rolled_back = bool(result.get("rolled_back"))
        details = ""
        action = run.stage_config.rollout.action
        if rolled_back and result.get("rollback_message") and stage_session is not None:
            # Under xdist the rollback items ran on a worker; the result is decided here.
            stage_session.set_result("rolled-back", str(result["rollback_message"]))
        keep = result.get("problem") == "insufficient evidence" and (
            not settings.rollback_on_insufficient
        )
        if not outcome.passed and action != "rollback" and not rolled_back and not keep:
            details, rolled_back = _final_rollback(run, settings, outcome, stage_session)
        _notify(run, settings, outcome, result, rolled_back, details, stage_session)


_CONFIGS: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIGS.append(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    for controller in config.stash.get(_CONTROLLERS, {}).values():
        controller._stop_sampler()
    with suppress(ValueError):
        _CONFIGS.remove(config)


def _config_of(run: StageRun) -> pytest.Config | None:
    for config in reversed(_CONFIGS):
        session = get_stage_session(config)
        if session is not None and session.run is run:
            return config
    return None


def _read_result(stage_session: StageSession | None, gate: str) -> dict[str, Any]:
    if stage_session is None:
        return {}
    path = stage_session.run_dir.path / RESULT_FILE.format(gate=gate)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _final_rollback(
    run: StageRun, settings: Settings, outcome: StageOutcome, stage_session: StageSession | None
) -> tuple[str, bool]:
    """Roll back what the stage left behind (interrupt, crash, failure outside the items)."""
    rollout = build_rollout(run, settings)
    with _signals_deferred(reraise=False):
        try:
            status = rollout.platform.status()
            needed = bool(status.group("canary")) or (
                rollout.previous_for(status, run.image) is not None
            )
            if not needed:
                return "", False
            status = rollout.rollback(run.image)
            check = rollout.verify_main(None, None, settings.verify_requests)
        except Exception as exc:
            message = f"rollback after '{outcome.result}' FAILED: {exc}"
            _say(run, message, red=True)
            return message, False
    message = (
        f"rolled back after the stage was {outcome.result}: traffic 100% to the main "
        f"deployment ({check.status.stable_image}, {len(check.status.group('stable'))} "
        f"replica(s)), canary removed, {check.requests} requests served"
    )
    _say(run, message, red=False)
    if stage_session is not None:
        stage_session.set_result("rolled-back", message)
    return message, True


def _say(run: StageRun, message: str, *, red: bool) -> None:
    config = _config_of(run)
    reporter = config.pluginmanager.get_plugin("terminalreporter") if config else None
    if reporter is not None:
        # A closed terminal (CI cancelled, pipe gone) must not stop the ledger update.
        with suppress(OSError):
            reporter.write_line(f"canary: {message}", red=red, green=not red)


def _notify(
    run: StageRun,
    settings: Settings,
    outcome: StageOutcome,
    result: dict[str, Any],
    rolled_back: bool,
    details: str,
    stage_session: StageSession | None,
) -> None:
    if settings.slack is None or stage_session is None:
        return
    from pytest_release.canary.judge import CanaryVerdict
    from pytest_release.canary.slack import SlackNotifier

    verdict: CanaryVerdict | None = None
    failed = result.get("failed_intervals") or []
    if failed:
        verdict = CanaryVerdict.from_dict(failed[0])
    elif result.get("verdict"):
        verdict = CanaryVerdict.from_dict(result["verdict"])
    action = run.stage_config.rollout.action if run.stage_config.rollout else "canary"
    event: Literal["passed", "failed", "rolled-back"]
    if outcome.passed:
        event = "rolled-back" if action == "rollback" else "passed"
    elif rolled_back:
        event = "rolled-back"
    else:
        event = "failed"
    text = details or outcome.message or str(result.get("problem") or "")
    notifier = SlackNotifier(
        settings.slack, stage_session.redact, warn=lambda m: _say(run, m, red=True)
    )
    notifier.notify(
        event,
        stage=run.stage,
        release_id=run.release_id,
        image=run.image,
        verdict=verdict,
        details=text,
    )

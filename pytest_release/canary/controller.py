"""The canary controller: the rollout step of a stage, one step at a time, without pytest.

A stage's rollout is a fixed sequence of steps (see :data:`STEPS_OF_ACTION`); the canary
gate makes one test item per step and asks :meth:`Controller.execute` to run it.  A step
adds report properties to the list it is given, and ends in one of three ways: it returns
(passed), raises :class:`~pytest_release.errors.GateCheckFailed` (failed, with the message
to show) or :class:`StepSkipped` (not run, with the reason).  The state between steps
(what was deployed, the hold and its verdicts, whether a rollback is needed) lives here;
:class:`StageHost` is what the controller needs from the session around it.

action ``canary`` (canary-1, canary-2)
    ``deploy``      N canary replicas of the image running and ready (status read back)
    ``traffic``     router split stable/canary read back equal to the stage's weight
    ``health``      one per interval of the hold, judged (see :mod:`.hold`); after a
                    failing verdict the later intervals are skipped
    ``verdict``     the stage verdict; insufficient evidence is never a pass
action ``promote`` (canary-3)
    ``promote:deploy``, ``promote:traffic`` (100 % to the new version), ``promote:main``
action ``rollback``
    nothing before the rollback steps
an observing platform (an external controller drives the rollout, canary/observing.py)
    ``observe`` (the controller runs this stage's step), then for ``canary`` ``health``
    and ``verdict``; no rollback steps: rollback is the controller's
actions ``bluegreen-deploy``, ``bluegreen-switch``
    see :mod:`pytest_release.canary.bluegreen` (``deploy``, ``idle``, ``health``,
    ``verdict``; ``switch``, ``switch:verify``)
every action ends with
    ``rollback:traffic``, ``rollback:canary``, ``rollback:main`` which run only when the
    stage's steps did not pass (or the action is ``rollback``)

The controller writes what the end of the stage needs (verdict, failed intervals, whether
it rolled back) to ``<run dir>/canary-<gate>.json`` after every step: under xdist the
steps run on a worker and the stage ends on the controller process.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pytest_release.canary.applied_split import require_split
from pytest_release.canary.rollback_target import main_target_of, rollback_record
from pytest_release.canary.rollout import ErrorBaseline
from pytest_release.errors import GateCheckFailed, RolloutError
from pytest_release.system.atomic import write_json_atomic
from pytest_release.system.signals import signals_deferred

if TYPE_CHECKING:
    from pytest_release.canary.hold import Hold, HoldDisplay
    from pytest_release.canary.judge import CanaryVerdict
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings
    from pytest_release.config.plain_tables import RolloutConfig

Step = Literal[
    "observe",
    "deploy",
    "traffic",
    "idle",
    "health",
    "verdict",
    "switch",
    "switch:verify",
    "promote:deploy",
    "promote:traffic",
    "promote:main",
    "rollback:traffic",
    "rollback:canary",
    "rollback:main",
]
ROLLBACK_STEPS: tuple[Step, ...] = ("rollback:traffic", "rollback:canary", "rollback:main")
STEPS_OF_ACTION: dict[str, tuple[Step, ...]] = {
    "canary": ("deploy", "traffic", "health", "verdict", *ROLLBACK_STEPS),
    "promote": ("promote:deploy", "promote:traffic", "promote:main", *ROLLBACK_STEPS),
    "rollback": ROLLBACK_STEPS,
    "bluegreen-deploy": ("deploy", "idle", "health", "verdict", *ROLLBACK_STEPS),
    "bluegreen-switch": ("switch", "switch:verify", *ROLLBACK_STEPS),
}
JUDGED_ACTIONS = ("canary", "bluegreen-deploy")
OBSERVED_ACTIONS = ("canary", "promote")
RESULT_FILE = "canary-{gate}.json"
INSUFFICIENT = "insufficient evidence"


class StepSkipped(Exception):
    """The step did not run; the message says why (the item is reported as skipped)."""


class StageHost(Protocol):
    """What the controller needs from the stage session around it."""

    @property
    def stage(self) -> str: ...

    @property
    def release_id(self) -> str: ...

    @property
    def image(self) -> str | None: ...

    @property
    def rootdir(self) -> Path: ...

    @property
    def run_dir(self) -> Path: ...

    @property
    def reports_dir(self) -> Path: ...

    def relative(self, path: Path) -> str: ...

    def redact(self, text: str) -> str: ...

    def set_result(self, result: Literal["rolled-back"], message: str) -> None: ...

    def hold_display(self, hold_seconds: float) -> HoldDisplay | None: ...


def interval_windows(hold: float, interval: float) -> list[tuple[float, float]]:
    """(start, end) offsets of the judged intervals of a hold."""
    count = max(1, math.ceil(hold / interval - 1e-9)) if hold > 0 else 0
    return [(k * interval, min((k + 1) * interval, hold)) for k in range(count)]


def observed_steps(action: str, hold: float) -> tuple[Step, ...]:
    """The steps of a stage on an observing platform (``PlatformPlugin.observes``):
    ``observe``, then the hold and the verdict when the stage judges; ValueError for an
    action the controller owns (rollback, blue/green)."""
    if action not in OBSERVED_ACTIONS:
        raise ValueError(action)
    return ("observe", "health", "verdict") if hold > 0 else ("observe",)


def read_result(run_dir: Path, gate: str) -> dict[str, Any]:
    """What a controller wrote for ``gate`` (empty when none ran or the file is broken)."""
    import json

    path = run_dir / RESULT_FILE.format(gate=gate)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Controller:
    """Per-process state of one canary gate across its steps."""

    host: StageHost
    settings: CanarySettings
    rollout_config: RolloutConfig
    build_rollout: Callable[[], Rollout]
    main_before: str | None = None
    problem: str | None = None  # why the canary is not judged / not promoted
    touched: bool = False  # a step changed the platform or the router
    rolled_back: bool = False
    rollback_message: str = ""
    rollback_errors: list[str] = field(default_factory=list)
    hold: Hold | None = None
    reported: bool = False

    def __post_init__(self) -> None:
        self._current = ""
        # The step table: every step the gate can generate, and what runs it.
        self._steps: dict[Step, Callable[[list[tuple[str, str]], tuple[float, float] | None], None]]
        self._steps = {
            "observe": self._observe,
            "deploy": self._deploy,
            "traffic": self._traffic,
            "idle": self._idle,
            "health": self._health,
            "verdict": self._verdict,
            "switch": self._switch,
            "switch:verify": self._switch_verify,
            "promote:deploy": self._deploy,
            "promote:traffic": self._promote_traffic,
            "promote:main": self._promote_main,
            "rollback:traffic": self._rollback_traffic,
            "rollback:canary": self._rollback_canary,
            "rollback:main": self._rollback_main,
        }

    @property
    def verdicts(self) -> list[CanaryVerdict]:
        return self.hold.verdicts if self.hold is not None else []

    @property
    def stage_verdict(self) -> CanaryVerdict | None:
        return self.hold.stage_verdict if self.hold is not None else None

    @property
    def image(self) -> str:
        image = self.host.image
        if not image:
            raise GateCheckFailed(
                f"stage '{self.host.stage}' deploys the release image, but no image was given: "
                "pass --image=REF (for platform.type 'local-process' the version the command "
                "template receives as {image})"
            )
        return image

    def rollout(self) -> Rollout:
        return self.build_rollout()

    # -- dispatch --------------------------------------------------------------------------
    def execute(
        self,
        step: Step,
        properties: list[tuple[str, str]],
        window: tuple[float, float] | None = None,
        name: str | None = None,
    ) -> None:
        """Run ``step`` (see the module docstring for how it ends)."""
        name = name or step
        try:
            if step in ROLLBACK_STEPS:
                self._rollback_step(step, name, properties)
                return
            if self.problem is not None:
                raise StepSkipped(f"not run: {self.problem}")
            self._current = name
            try:
                self._steps[step](properties, window)
            except GateCheckFailed:
                self.problem = self.problem or f"{name} failed"
                self.stop()
                raise
            except RolloutError as exc:
                self.problem = self.problem or f"{name} failed"
                self.stop()
                raise GateCheckFailed(f"{name}: {exc}") from None
            except StepSkipped:
                raise  # e.g. an insufficient interval the stage still allows: go on
            except Exception:
                self.problem = self.problem or f"{name} failed"
                self.stop()
                raise
        finally:
            # The controller process reads this at the end of the stage (xdist: the
            # steps ran on a worker): what failed, whether it was rolled back.
            self.write_result()

    # -- observing (an external controller drives the rollout) -----------------------------
    def _observe(self, props: list[tuple[str, str]], window: tuple[float, float] | None) -> None:
        from pytest_release.canary.observing import ObservingRollout

        rollout = self.rollout()
        if not isinstance(rollout, ObservingRollout):
            raise GateCheckFailed(
                f"the platform {rollout.platform.name} does not observe a controller; the "
                "observe step belongs to observing platforms (platform.type = 'argo-rollouts')"
            )
        weight = 100 if self.rollout_config.action == "promote" else self.rollout_config.weight
        props += rollout.observe_step(weight, self.host.release_id)

    # -- canary steps ----------------------------------------------------------------------
    def _deploy(self, props: list[tuple[str, str]], window: tuple[float, float] | None) -> None:
        image = self.image
        rollout = self.rollout()
        self.touched = True
        main = rollout.ensure_main()
        self.main_before = main.stable_image
        replicas = self.rollout_config.replicas
        bluegreen = self.rollout_config.action == "bluegreen-deploy"
        if bluegreen and rollout.router.weights().canary != 0:
            rollout.shift(0)  # the idle colour must not take production traffic when it joins
        status = rollout.deploy_canary(image, replicas)
        canary = status.group("canary")
        props += [
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
        if bluegreen:
            from pytest_release.canary.bluegreen import check_full_size

            check_full_size(status, self.host.stage)

    def _traffic(self, props: list[tuple[str, str]], window: tuple[float, float] | None) -> None:
        weight = self.rollout_config.weight
        weights = self.rollout().shift(weight)
        require_split(weights, weight, f"canary {weight}%", props, members=True)

    def _idle(self, props: list[tuple[str, str]], window: Any) -> None:
        weights = self.rollout().shift(0)  # blue/green: a router member taking no traffic
        require_split(weights, 0, "the idle colour at 0%", props, members=True)

    # -- blue/green switch (see canary/bluegreen.py) ---------------------------------------
    def _switch(self, props: list[tuple[str, str]], window: Any) -> None:
        from pytest_release.canary.bluegreen import require_idle_colour, switch_to_idle_colour

        rollout = self.rollout()
        require_idle_colour(rollout.platform.status(), self.image, self.host.stage)
        self.touched = True  # from here on a failure rolls back
        self.main_before = switch_to_idle_colour(rollout, props)

    def _switch_verify(self, props: list[tuple[str, str]], window: Any) -> None:
        from pytest_release.canary.bluegreen import verify_live

        props += verify_live(
            self.rollout(), self.image, self.settings.verify_requests, self.error_baseline()
        ).properties()

    def _health(self, props: list[tuple[str, str]], window: tuple[float, float] | None) -> None:
        from pytest_release.canary.hold import Hold

        assert window is not None
        hold_seconds = self.rollout_config.hold
        if self.hold is None:
            self.hold = Hold(
                self.settings,
                hold_seconds,
                len(interval_windows(hold_seconds, self.rollout_config.interval)),
                self.rollout(),
                display=self.host.hold_display(hold_seconds),
            )
        judgement = self.hold.judge_window(window)
        props += judgement.properties
        if judgement.failed:
            self.problem = f"{self._current} failed: judging stopped"
            self.end_hold()
            raise GateCheckFailed(judgement.failure_message())
        if judgement.cannot_pass is not None:
            # Insufficient intervals already exceed what the stage allows: roll back now
            # instead of keeping the canary for the rest of the hold.
            self.problem = INSUFFICIENT
            self.end_hold()
            raise GateCheckFailed(
                f"{judgement.cannot_pass}; judging stopped early\n"
                + judgement.verdict.failure_message()
            )
        if window[1] >= hold_seconds - 1e-9:
            self.end_hold()
        if judgement.verdict.verdict == "insufficient":
            raise StepSkipped(judgement.verdict.failure_message())

    def end_hold(self) -> None:
        """Stop sampling; judge the stage; plot and step summary (once)."""
        if self.hold is None:
            return
        self.hold.finish()
        self._write_reports()

    def _verdict(self, props: list[tuple[str, str]], window: tuple[float, float] | None) -> None:
        if self.hold is None:
            raise GateCheckFailed("the hold never started: no interval was judged")
        self.end_hold()
        verdict = self.hold.stage_verdict
        assert verdict is not None
        props += verdict.properties()
        if verdict.verdict == "pass":
            return
        if verdict.verdict == "insufficient":
            self.problem = INSUFFICIENT
            raise GateCheckFailed(
                verdict.failure_message()
                + "\ninsufficient evidence is never a pass: send more traffic (sampler.rate, "
                "sampler.direct_rate), hold longer, or lower judge.min_requests"
            )
        self.problem = "the canary failed"
        raise GateCheckFailed(verdict.failure_message())

    # -- promote steps ---------------------------------------------------------------------
    def _promote_traffic(self, props: list[tuple[str, str]], window: Any) -> None:
        require_split(self.rollout().shift(100), 100, "canary 100%", props)

    def _promote_main(self, props: list[tuple[str, str]], window: Any) -> None:
        rollout = self.rollout()
        replicas = self.rollout_config.replicas
        rollout.promote(self.image, replicas)
        check = rollout.verify_main(
            self.image, replicas, self.settings.verify_requests, self.error_baseline()
        )
        props += [
            ("main.image", self.image),
            ("main.replicas", str(len(check.status.group("stable")))),
            ("main.previous_image", str(check.status.previous_image)),
            ("router.stable_percent", str(check.weights.stable)),
            ("router.requests_checked", str(check.requests)),
        ]

    # -- rollback --------------------------------------------------------------------------
    def rollback_needed(self) -> str | None:
        if self.rollout_config.action == "rollback":
            return "stage rollback"
        if self.problem is None or not self.touched:
            return None
        if self.problem == INSUFFICIENT and not self.settings.rollback_on_insufficient:
            return None
        return self.problem

    def _rollback_step(self, step: Step, name: str, props: list[tuple[str, str]]) -> None:
        reason = self.rollback_needed()
        if reason is None:
            if self.problem is not None:
                raise StepSkipped(f"nothing to roll back: nothing was deployed ({self.problem})")
            raise StepSkipped("nothing to roll back: the rollout step passed")
        self.stop()
        try:
            with signals_deferred():
                self._steps[step](props, None)
        except RolloutError as exc:
            self.rollback_errors.append(f"{name}: {exc}")
            raise GateCheckFailed(f"{name}: {exc}") from None

    def _target_main(self, rollout: Rollout) -> str | None:
        if self.rollout_config.action == "rollback":  # undo what the release changed
            return main_target_of(self.host.run_dir, rollout, self.host.image)
        if self.main_before is not None:
            return self.main_before
        status = rollout.platform.status()
        return rollout.previous_for(status, self.host.image) or status.stable_image

    def _rollback_traffic(self, props: list[tuple[str, str]], window: Any) -> None:
        require_split(self.rollout().rollback_traffic(), 0, "stable 100%", props)

    def _rollback_canary(self, props: list[tuple[str, str]], window: Any) -> None:
        rollout = self.rollout()
        status = rollout.remove_canary()
        weights = rollout.router.weights()
        if status.group("canary") or weights.canary_members:
            raise GateCheckFailed(
                f"canary replicas remain after removal: platform {status.describe()}; "
                f"router canary members {list(weights.canary_members)}"
            )
        props.append(("canary.replicas", "0"))

    def _rollback_main(self, props: list[tuple[str, str]], window: Any) -> None:
        rollout = self.rollout()
        target = self._target_main(rollout)
        if target is not None:
            rollout.restore_main(target)
        check = rollout.verify_main(
            target, None, self.settings.verify_requests, self.error_baseline()
        )
        self.rolled_back = True
        props += [
            ("main.image", str(check.status.stable_image)),
            ("main.replicas", str(len(check.status.group("stable")))),
            ("router.requests_checked", str(check.requests)),
        ]
        if self.rollout_config.action == "rollback":
            self.rollback_message = rollback_record(self.host.run_dir, check, props)
        else:
            reason = self.rollback_needed() or "rolled back"
            self.rollback_message = (
                f"stage '{self.host.stage}' rolled back ({reason}); main deployment on "
                f"{check.status.stable_image}"
            )
            self.host.set_result("rolled-back", self.rollback_message)

    def error_baseline(self) -> ErrorBaseline:
        """Stable's own errors in the hold (direct requests), or, without a hold, the
        judge's error-rate threshold as the assumed rate."""
        samples = self.hold.samples() if self.hold else []
        stable = [s for s in samples if s.target == "stable" and s.kind == "http"]
        return ErrorBaseline(
            errors=sum(1 for s in stable if not s.ok),
            total=len(stable),
            fallback_rate=self.settings.judge.max_error_rate or 0.0,
        )

    # -- reports ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop sampling and the live display (idempotent)."""
        if self.hold is not None:
            self.hold.stop()

    def _write_reports(self) -> None:
        if self.reported or self.hold is None or not self.hold.started:
            return
        self.reported = True
        from pytest_release.canary.plot import write_plot
        from pytest_release.canary.summary import markdown_summary
        from pytest_release.report import github

        samples = self.hold.samples()
        path = self.host.reports_dir / f"{self.host.stage}-canary.svg"
        write_plot(path, samples, self.verdicts, f"{self.host.stage}: {self.host.image}")
        if github.in_github_actions():
            summary = markdown_summary(
                self.verdicts,
                samples,
                svg_path=self.host.relative(path),
                title=f"Canary metrics: {self.host.stage}",
                stage_verdict=self.stage_verdict,
            )
            github.write_step_summary(self.host.redact(summary))

    def write_result(self) -> None:
        """What the process that ends the stage needs (Slack, final rollback)."""
        stage_verdict = self.stage_verdict
        data = {
            "verdict": stage_verdict.to_dict() if stage_verdict else None,
            "failed_intervals": [v.to_dict() for v in self.verdicts if v.verdict == "fail"],
            "problem": self.problem,
            "rolled_back": self.rolled_back,
            "rollback_message": self.rollback_message,
            "rollback_errors": self.rollback_errors,
            "pid": os.getpid(),
        }
        # Unwritable: the end of the stage then finds no result and rolls back what it finds.
        with suppress(OSError):
            write_json_atomic(self.host.run_dir / RESULT_FILE.format(gate=self.settings.gate), data)

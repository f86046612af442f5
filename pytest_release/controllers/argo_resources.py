"""The Argo Rollouts resources that mirror the configured rollout stages, as data.

Each rollout stage (``action = "canary"`` or ``"promote"``) becomes two steps of the
``Rollout``: ``setWeight: <weight>`` and an ``analysis`` step with the stage's
``AnalysisTemplate``. The template's metrics answer the controller with pytest-release:

* ``job``: a Job runs ``pytest --stage=<stage>`` (the stage observes the rollout the
  controller drives, runs its gates and the judge, records the ledger); exit 0 is a
  successful measurement, anything else a failed one.
* ``web``: from the end of the stage's hold, the analysis server's JSON verdict
  (``python -m pytest_release analysis-server``), asked every ``VERDICT_POLL_SECONDS``
  for up to the verdict delay. ``pass`` meets ``successCondition`` and ends the metric at
  once (``consecutiveSuccessLimit: 1``); ``fail`` meets ``failureCondition`` and fails it
  at once (``failureLimit: 0``); ``insufficient`` (or a stage still running, or none
  recorded) meets neither: an Inconclusive measurement, asked again. When every answer up
  to the delay was one of those, the metric and the AnalysisRun are Inconclusive and the
  Rollout pauses: never a silent pass. (Asking once after the delay made the controller
  wait the whole delay for every verdict, however early the stage recorded it.)

The release id the analysis stages record is the canary's pod-template hash (the
controller's ``podTemplateHashValue: Latest``). Not the image: with ``workloadRef`` the
Rollout has no ``spec.template`` of its own, and Argo Rollouts v1.10 refuses a ``fieldRef``
to it ("invalid path spec.template.spec.containers[0].image in rollout", seen with the real
controller), so the Rollout would never get past its first analysis step.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config import ReleaseConfig, StageConfig

Provider = Literal["job", "web", "both"]
ROLLOUT_ACTIONS = ("canary", "promote")
TEMPLATE_PREFIX = "pytest-release-"
RELEASE_ARG = "release-id"
# A Job may take this long beyond the stage's hold (start-up, gates, the record).
JOB_MARGIN_SECONDS = 600
# The web metric asks for the verdict until this long beyond the hold (the stage may start
# late, wait for its canary pods and must record its verdict) ...
VERDICT_DELAY_SECONDS = 30.0
# ... every this many seconds: how late the controller may learn a recorded verdict.
VERDICT_POLL_SECONDS = 5


@dataclass(frozen=True)
class ArgoOptions:
    """What the generator needs beyond the stage configuration."""

    provider: Provider = "job"
    runner_image: str | None = None  # the image the analysis Job runs pytest in
    analysis_url: str | None = None  # base URL of the analysis server (web provider)
    rollout_name: str | None = None  # unset: the platform's main Deployment name
    service_account: str | None = None  # of the analysis Job's pod
    stages: tuple[str, ...] = ()  # unset: every canary/promote stage in configuration order
    pytest_args: tuple[str, ...] = ()  # more arguments for the Job's pytest
    verdict_delay: float = VERDICT_DELAY_SECONDS  # web: seconds after the hold to ask until


@dataclass(frozen=True)
class Target:
    """The service the rollout acts on, from the canary gate's kubernetes platform and
    traefik router tables."""

    namespace: str
    app: str
    deployment: str
    stable_service: str
    canary_service: str
    traefik_service: str
    port: int


def rollout_stages(config: ReleaseConfig, chosen: tuple[str, ...]) -> list[tuple[str, StageConfig]]:
    """The stages the Rollout's steps mirror, in order."""
    if not chosen:
        picked = [
            (name, stage)
            for name, stage in config.stages.items()
            if stage.rollout is not None and stage.rollout.action in ROLLOUT_ACTIONS
        ]
        if not picked:
            raise ReleaseConfigError(
                f"{config.source}: no stage has a rollout with action 'canary' or 'promote'; "
                "add one (e.g. [stages.canary-1.rollout] weight = 10) or name the stages "
                "with --stages"
            )
        return picked
    result = []
    for name in chosen:
        stage = config.stages.get(name)
        if stage is None:
            raise ReleaseConfigError(
                f"--stages names {name!r}, which {config.source} does not define; defined: "
                f"{', '.join(sorted(config.stages))}"
            )
        if stage.rollout is None or stage.rollout.action not in ROLLOUT_ACTIONS:
            action = None if stage.rollout is None else stage.rollout.action
            raise ReleaseConfigError(
                f"--stages names {name!r}, whose rollout action is {action!r}: only stages "
                "with action 'canary' or 'promote' become Rollout steps"
            )
        result.append((name, stage))
    return result


def find_target(
    config: ReleaseConfig,
    stages: list[tuple[str, StageConfig]],
    resources: str = "the Argo Rollouts resources",
) -> Target:
    """The kubernetes platform and traefik router of the first mirrored stage's canary gate
    (``resources``: what needs them, for the error)."""
    from pytest_release.canary.platforms.kubernetes.config import KubernetesPlatformConfig
    from pytest_release.canary.routers.traefik.config import TraefikRouterConfig

    name, stage = stages[0]
    gates = config.for_stage(name).gates
    for gate_name in stage.gates:
        gate = gates.get(gate_name)
        other = getattr(gate, "settings_from", None)
        gate = gates.get(other, gate) if other else gate
        platform = getattr(gate, "platform", None)
        router = getattr(gate, "router", None)
        if platform is None:
            continue
        if not isinstance(platform, KubernetesPlatformConfig) or not isinstance(
            router, TraefikRouterConfig
        ):
            raise ReleaseConfigError(
                f"gate {gate_name!r} of stage {name!r} has platform.type = "
                f"{getattr(platform, 'type', None)!r} and router.type = "
                f"{getattr(router, 'type', None)!r}: {resources} need "
                "platform.type = 'kubernetes' and router.type = 'traefik'"
            )
        return Target(
            namespace=platform.namespace,
            app=platform.app,
            deployment=platform.main_name,
            stable_service=platform.main_name,
            canary_service=platform.canary_name,
            traefik_service=router.name or platform.main_name,
            port=platform.port,
        )
    raise ReleaseConfigError(
        f"stage {name!r} has no canary gate with a platform table; {resources} "
        "need [gates.canary.platform] type = 'kubernetes' (namespace, app) and "
        "[gates.canary.router] type = 'traefik'"
    )


def template_name(stage: str) -> str:
    return f"{TEMPLATE_PREFIX}{stage}"


def _seconds(value: float) -> str:
    return f"{math.ceil(value)}s"


def _job_metric(stage: str, config: StageConfig, options: ArgoOptions) -> dict[str, Any]:
    assert config.rollout is not None
    command = [
        "python",
        "-m",
        "pytest",
        f"--stage={stage}",
        f"--release-id={{{{args.{RELEASE_ARG}}}}}",
        "-p",
        "no:cacheprovider",
        *options.pytest_args,
    ]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "pytest-release", "image": options.runner_image, "command": command}
        ],
    }
    if options.service_account:
        pod["serviceAccountName"] = options.service_account
    return {
        "name": "pytest-release-stage",
        "failureLimit": 0,
        "provider": {
            "job": {
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "pytest-release"}},
                "spec": {
                    # One attempt: a failed stage is a verdict, not a flake to retry.
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": math.ceil(config.rollout.hold) + JOB_MARGIN_SECONDS,
                    "template": {"spec": pod},
                },
            }
        },
    }


def _web_metric(stage: str, config: StageConfig, options: ArgoOptions) -> dict[str, Any]:
    assert config.rollout is not None
    assert options.analysis_url is not None
    base = options.analysis_url.rstrip("/")
    # At the end of the hold, then every VERDICT_POLL_SECONDS until the verdict delay.
    count = math.floor(options.verdict_delay / VERDICT_POLL_SECONDS) + 1
    polling: dict[str, Any] = {"count": count}
    if count > 1:
        polling["interval"] = f"{VERDICT_POLL_SECONDS}s"
    return {
        "name": "pytest-release-verdict",
        "initialDelay": _seconds(config.rollout.hold),
        **polling,
        # The first 'pass' ends the metric Successful, the first 'fail' Failed.
        "consecutiveSuccessLimit": 1,
        "failureLimit": 0,
        # 'insufficient', 'running' and 'none' meet neither condition: Inconclusive, asked
        # again; all `count` of them make the run Inconclusive (with consecutiveSuccessLimit
        # set, reaching the count without a success is Inconclusive too): the Rollout pauses.
        "inconclusiveLimit": count - 1,
        "successCondition": 'result.verdict == "pass"',
        "failureCondition": 'result.verdict == "fail"',
        "provider": {
            "web": {
                "url": f"{base}/verdict/{stage}?release={{{{args.{RELEASE_ARG}}}}}",
                "jsonPath": "{$}",
                "timeoutSeconds": 10,
            }
        },
    }


def resource(
    api_version: str, kind: str, name: str, namespace: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """A namespaced resource as written to YAML (also the Flagger Canary)."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def analysis_template(
    stage: str, config: StageConfig, target: Target, options: ArgoOptions
) -> dict[str, Any]:
    metrics = []
    if options.provider in ("job", "both"):
        metrics.append(_job_metric(stage, config, options))
    if options.provider in ("web", "both"):
        metrics.append(_web_metric(stage, config, options))
    return resource(
        "argoproj.io/v1alpha1",
        "AnalysisTemplate",
        template_name(stage),
        target.namespace,
        {"args": [{"name": RELEASE_ARG}], "metrics": metrics},
    )


def rollout(
    stages: list[tuple[str, StageConfig]], target: Target, options: ArgoOptions
) -> dict[str, Any]:
    args = [{"name": RELEASE_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}]
    steps: list[dict[str, Any]] = []
    for name, stage in stages:
        assert stage.rollout is not None
        steps.append({"setWeight": stage.rollout.weight})
        steps.append(
            {
                "analysis": {
                    "templates": [{"templateName": template_name(name)}],
                    "args": copy.deepcopy(args),  # no shared objects: no YAML anchors
                }
            }
        )
    replicas = max(stage.rollout.replicas for _, stage in stages if stage.rollout is not None)
    return resource(
        "argoproj.io/v1alpha1",
        "Rollout",
        options.rollout_name or target.deployment,
        target.namespace,
        {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": target.app}},
            # The pods are the existing Deployment's: the Rollout takes its template over.
            "workloadRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": target.deployment,
                "scaleDown": "onsuccess",
            },
            "strategy": {
                "canary": {
                    "stableService": target.stable_service,
                    "canaryService": target.canary_service,
                    "trafficRouting": {
                        "traefik": {"weightedTraefikServiceName": target.traefik_service}
                    },
                    "steps": steps,
                }
            },
        },
    )


def check_options(options: ArgoOptions) -> None:
    if not 0 <= options.verdict_delay <= 86_400:
        raise ReleaseConfigError(
            f"--verdict-delay must be 0..86400 seconds after the hold, got "
            f"{options.verdict_delay:g}: the time the stage needs to record its verdict"
        )
    if options.provider in ("job", "both") and not options.runner_image:
        raise ReleaseConfigError(
            f"--provider={options.provider} runs the stage in a Job: name the image it runs "
            "pytest in (your test suite, pytest-release installed) with --runner-image=IMAGE"
        )
    if options.provider in ("web", "both"):
        require_http_url(
            options.analysis_url,
            f"--provider={options.provider} reads the verdict from the analysis server: "
            f"--analysis-url must be its http(s) base URL (got {options.analysis_url!r}), "
            "e.g. --analysis-url=http://pytest-release-analysis.shop:8080",
        )


def require_http_url(url: str | None, problem: str) -> None:
    """A usage error saying ``problem`` unless ``url`` is an http(s) URL (a server the
    controller calls: the analysis server, the webhook)."""
    if not (url or "").startswith(("http://", "https://")):
        raise ReleaseConfigError(problem)


def resources(config: ReleaseConfig, options: ArgoOptions) -> list[dict[str, Any]]:
    """The AnalysisTemplates (one per mirrored stage) and the Rollout, in apply order."""
    check_options(options)
    stages = rollout_stages(config, options.stages)
    target = find_target(config, stages)
    templates = [analysis_template(name, stage, target, options) for name, stage in stages]
    return [*templates, rollout(stages, target, options)]

"""The Flagger ``Canary`` that mirrors the configured canary stages, as data.

Each canary stage (``action = "canary"``, weight below 100) is a step of
``analysis.stepWeights`` (10, 50 for the built-in stages); Flagger promotes by itself after
the last step (what ``canary-3``, ``action = "promote"``, does when pytest-release drives).
The webhooks point to ``python -m pytest_release webhook`` (:mod:`.webhook`):

* ``rollout`` (every interval, at every step): the verdict of the stage configured with
  the Canary's weight now; the webhook starts that stage when it has no run for the
  release. Anything but ``pass`` is not 2xx, so Flagger does not advance, and counts a
  failed check: ``threshold`` leaves room for the stages' holds (below).
* ``rollback``: 2xx (Flagger rolls back at once) when a stage failed for the release,
  so a failing verdict does not wait for ``threshold`` failed checks.
* ``confirm-promotion``: 2xx only when every mirrored stage passed for the release.
* ``post-rollout``: records in the ledger what Flagger did (promoted or rolled back).
* ``pre-rollout`` (with ``pre_rollout_stage``): that stage, run against the canary before
  it gets traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_release.controllers.argo_resources import find_target, require_http_url, resource
from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config import ReleaseConfig, StageConfig

# What a stage needs beyond its hold while the webhook answers 'running': the pytest
# session's start, the gates before the canary gate, the ledger record.
STAGE_OVERHEAD_SECONDS = 120.0
WEBHOOK_TIMEOUT = "30s"


@dataclass(frozen=True)
class FlaggerOptions:
    """What the generator needs beyond the stage configuration."""

    webhook_url: str | None = None  # base URL of `python -m pytest_release webhook`
    interval: float = 60.0  # seconds between Flagger's analysis runs
    failed_checks: int = 2  # failed checks Flagger tolerates beyond the stages' 'running'
    stages: tuple[str, ...] = ()  # unset: every canary stage in configuration order
    pre_rollout_stage: str | None = None
    canary_name: str | None = None  # unset: the Deployment's name


def flagger_stages(config: ReleaseConfig, chosen: tuple[str, ...]) -> list[tuple[str, StageConfig]]:
    """The stages the Canary's steps mirror, in order of their weights."""
    picked: list[tuple[str, StageConfig]] = []
    for name in chosen or tuple(config.stages):
        stage = config.stages.get(name)
        if stage is None:
            raise ReleaseConfigError(
                f"--stages names {name!r}, which {config.source} does not define; defined: "
                f"{', '.join(sorted(config.stages))}"
            )
        rollout = stage.rollout
        if rollout is not None and rollout.action == "canary" and rollout.weight < 100:
            picked.append((name, stage))
        elif chosen:
            action = None if rollout is None else rollout.action
            raise ReleaseConfigError(
                f"--stages names {name!r}, whose rollout is action {action!r} (weight "
                f"{None if rollout is None else rollout.weight}): only stages with action "
                "'canary' and a weight below 100 become Flagger steps (Flagger promotes itself)"
            )
    if not picked:
        raise ReleaseConfigError(
            f"{config.source}: no stage has a rollout with action 'canary' and a weight below "
            "100; add one (e.g. [stages.canary-1.rollout] weight = 10) or name them with --stages"
        )
    weights = [stage.rollout.weight for _, stage in picked if stage.rollout is not None]
    if weights != sorted(set(weights)):
        raise ReleaseConfigError(
            f"the mirrored stages {', '.join(n for n, _ in picked)} have the weights {weights}: "
            "Flagger's stepWeights must rise step by step, and the webhook tells the stages "
            "apart by their weight; give each stage its own, higher weight"
        )
    return picked


def _duration(seconds: float) -> str:
    """Flagger's duration form (the CRD's pattern ``^[0-9]+(m|s)``)."""
    whole = math.ceil(seconds)
    return f"{whole // 60}m" if whole % 60 == 0 else f"{whole}s"


def threshold(
    config: ReleaseConfig, stages: list[tuple[str, StageConfig]], options: FlaggerOptions
) -> int:
    """Failed checks before Flagger rolls back: each interval a stage runs, the ``rollout``
    (or ``pre-rollout``) webhook answers 'running' (not 2xx) and Flagger counts a failed
    check; the count is not reset between steps. A failing verdict rolls back at once
    (``rollback`` webhook)."""
    running = [stage for _, stage in stages]
    if options.pre_rollout_stage:
        running.append(config.stages[options.pre_rollout_stage])
    intervals = 0
    for stage in running:
        hold = stage.rollout.hold if stage.rollout is not None else 0.0
        intervals += math.ceil((hold + STAGE_OVERHEAD_SECONDS) / options.interval)
    return intervals + options.failed_checks


def _webhook(name: str, hook: str, base: str, stage: str | None = None) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": name,
        "type": hook,
        "url": f"{base}/{hook}",
        "timeout": WEBHOOK_TIMEOUT,
    }
    if stage is not None:
        webhook["metadata"] = {"stage": stage}
    return webhook


def check_options(config: ReleaseConfig, options: FlaggerOptions) -> None:
    require_http_url(
        options.webhook_url,
        f"--webhook-url must be the http(s) base URL of `python -m pytest_release "
        f"webhook` (got {options.webhook_url!r}), e.g. "
        "--webhook-url=http://pytest-release-webhook.shop:8080",
    )
    if not 10 <= options.interval <= 86_400:
        raise ReleaseConfigError(
            f"--interval must be 10..86400 seconds, got {options.interval:g}: the time "
            "between Flagger's analysis runs"
        )
    if options.failed_checks < 1:
        raise ReleaseConfigError(
            f"--failed-checks must be at least 1, got {options.failed_checks}: the failed "
            "checks Flagger tolerates besides the intervals the stages are running"
        )
    stage = options.pre_rollout_stage
    if stage is not None and stage not in config.stages:
        raise ReleaseConfigError(
            f"--pre-rollout-stage names {stage!r}, which {config.source} does not define; "
            f"defined: {', '.join(sorted(config.stages))}"
        )


def canary(config: ReleaseConfig, options: FlaggerOptions) -> dict[str, Any]:
    """The Canary resource."""
    check_options(config, options)
    stages = flagger_stages(config, options.stages)
    target = find_target(config, stages, "the Flagger Canary and its webhooks")
    base = (options.webhook_url or "").rstrip("/")
    webhooks = []
    if options.pre_rollout_stage:
        webhooks.append(
            _webhook("pytest-release-pre-rollout", "pre-rollout", base, options.pre_rollout_stage)
        )
    webhooks += [
        _webhook("pytest-release-rollout", "rollout", base),
        _webhook("pytest-release-rollback", "rollback", base),
        _webhook("pytest-release-confirm-promotion", "confirm-promotion", base),
        _webhook("pytest-release-post-rollout", "post-rollout", base),
    ]
    return resource(
        "flagger.app/v1beta1",
        "Canary",
        options.canary_name or target.deployment,
        target.namespace,
        {
            "provider": "traefik",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target.deployment},
            "service": {"port": target.port},
            "analysis": {
                "interval": _duration(options.interval),
                "threshold": threshold(config, stages, options),
                "stepWeights": [s.rollout.weight for _, s in stages if s.rollout is not None],
                "webhooks": webhooks,
            },
        },
    )

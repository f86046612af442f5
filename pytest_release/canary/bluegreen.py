"""Blue/green on the canary engine's groups: the *idle colour* is the canary group, the
*live colour* the main deployment.

action ``bluegreen-deploy``
    ``deploy`` the new version as the idle colour at full size (as many replicas as the
    live colour), ``idle`` (router read back at 0 % to it: it takes no production
    traffic), ``health`` per interval judged from the sampler's direct requests and
    /health probes of each colour, ``verdict``.
action ``bluegreen-switch``
    ``switch`` all traffic to the idle colour in one router change (read back 0/100),
    ``switch:verify`` the new colour serves: ready replicas of the release image, the
    router's split and members, and requests through the router.  The old colour keeps
    running at 0 %: the warm standby.
switch back
    the ``rollback`` action: traffic back to the old colour in one router change, the new
    colour removed, the main deployment verified.
finish
    the ``promote`` action: the new colour becomes the main deployment, the standby stops.

Every router change is one call (:meth:`~pytest_release.canary.router.TrafficRouter.set_weights`),
so no request finds neither colour: both colours are members of the router throughout.
"""

from __future__ import annotations

from pytest_release.canary.applied_split import require_split
from pytest_release.canary.end_state import LiveCheck, verify_live
from pytest_release.canary.platform import PlatformStatus
from pytest_release.canary.rollout import Rollout
from pytest_release.errors import GateCheckFailed

__all__ = [
    "LiveCheck",
    "check_full_size",
    "require_idle_colour",
    "switch_to_idle_colour",
    "verify_live",
]


def check_full_size(status: PlatformStatus, stage: str) -> None:
    """Blue/green needs the idle colour as large as the live one: it takes all traffic
    in one step."""
    idle, live = len(status.group("canary")), len(status.group("stable"))
    if idle < live:
        raise GateCheckFailed(
            f"the idle colour runs {idle} replica(s), the live colour {live}: blue/green "
            f"switches all traffic at once, so the idle colour needs full size (set "
            f"stages.{stage}.rollout.replicas = {live})"
        )


def require_idle_colour(status: PlatformStatus, image: str, stage: str) -> None:
    """Before a switch: the idle colour runs ``image``, ready, at full size."""
    idle = status.group("canary")
    if not idle:
        raise GateCheckFailed(
            f"nothing to switch to: no idle colour runs (replicas: {status.describe()}); run "
            f"the blue/green deploy stage for {image!r} first"
        )
    if status.canary_image != image:
        raise GateCheckFailed(
            f"the idle colour runs {status.canary_image!r}, not the release image {image!r}: "
            "deploy this release to the idle colour first"
        )
    not_ready = status.not_ready("canary")
    if not_ready:
        raise GateCheckFailed(
            "the idle colour is not ready: "
            + ", ".join(f"{r.name} ({r.endpoint})" for r in not_ready)
        )
    check_full_size(status, stage)


def switch_to_idle_colour(rollout: Rollout, props: list[tuple[str, str]]) -> str | None:
    """All traffic to the idle colour (checked with :func:`require_idle_colour` first) in
    one router change, read back; the live colour keeps running as the standby.  Returns
    the standby's version."""
    status = rollout.platform.status()
    weights = rollout.shift(100)  # one router change: every request finds a colour
    props += [
        ("standby.image", str(status.stable_image)),
        ("standby.replicas", str(len(status.group("stable")))),
    ]
    require_split(weights, 100, "the new colour at 100%", props)
    return status.stable_image

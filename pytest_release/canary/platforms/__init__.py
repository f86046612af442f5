"""Where versions run: one folder per platform, each with ``config.py`` (its ``platform``
table), ``platform.py`` (the :class:`~pytest_release.canary.platform.Platform`) and
``rollout.py`` (a :class:`~pytest_release.canary.rollout.Rollout` over it and its routers,
built by ``build_rollout(settings, rootdir)``;
:func:`pytest_release.canary.settings.build_rollout` picks the module from :data:`PLATFORMS`).

Adding a platform is one new folder plus one entry in :data:`PLATFORMS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformEntry:
    """A platform folder and the router types that can split its traffic."""

    module: str  # has build_rollout(settings, rootdir)
    routers: tuple[str, ...]
    router_hint: str  # how to fix a router that does not fit


PLATFORMS: dict[str, PlatformEntry] = {
    "local-process": PlatformEntry(
        "pytest_release.canary.platforms.local.rollout",
        ("haproxy",),
        "set router.type = 'haproxy' (the default) or leave the router table out",
    ),
    "local-docker": PlatformEntry(
        "pytest_release.canary.platforms.local.rollout",
        ("haproxy",),
        "set router.type = 'haproxy' (the default) or leave the router table out",
    ),
    "kubernetes": PlatformEntry(
        "pytest_release.canary.platforms.kubernetes.rollout",
        ("traefik", "gateway"),
        "set router.type = 'traefik' (a weighted TraefikService) or 'gateway' (a Gateway API "
        "HTTPRoute)",
    ),
    "cloud-run": PlatformEntry(
        "pytest_release.canary.platforms.cloud_run.rollout",
        ("cloud-run",),
        "set router.type = 'cloud-run' (the service splits traffic between its revisions)",
    ),
}


def router_problem(platform_type: str, router_type: str) -> str | None:
    """Why a canary gate's platform and router cannot work together, or None."""
    entry = PLATFORMS[platform_type]
    if router_type in entry.routers:
        return None
    fits = [name for name, e in PLATFORMS.items() if router_type in e.routers]
    return (
        f"platform.type = {platform_type!r} cannot be routed by router.type = {router_type!r} "
        f"(that router works with platform.type {' or '.join(repr(f) for f in fits)}): "
        f"{entry.router_hint}"
    )

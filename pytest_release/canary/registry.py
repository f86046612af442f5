"""Which platforms, routers and evidence sources exist: a registry filled from entry points.

A platform registers under the entry point group ``pytest_release.platforms``, a router
under ``pytest_release.routers``; the entry point's name is the table's ``type`` (what a
user writes in ``platform.type`` / ``router.type``) and its value a
:class:`PlatformPlugin` or :class:`RouterPlugin`.  An evidence source registers under
``pytest_release.evidence``: the entry point's name is what a user writes in
``judge.evidence``, its table (if it has one) is ``judge.<name>``, and its value an
:class:`EvidencePlugin`.  The built-ins register the same way
(``[project.entry-points]`` of pytest-release's ``pyproject.toml``), so no other module
spells out the set of platforms: the canary gate's config models, the docs, the
platform/router fit and the factory all ask this registry.

Loading a plug-in imports its entry's module (a small one: the config model and the
plug-in value); its platform and router code is imported only when a stage builds the
rollout (``PlatformPlugin.build_rollout`` names it as ``"module:function"``).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from pytest_release.canary.evidence.prometheus_queries import Queries
from pytest_release.canary.router import RouterCapabilities
from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.settings import CanarySettings

PLATFORMS_GROUP = "pytest_release.platforms"
ROUTERS_GROUP = "pytest_release.routers"
EVIDENCE_GROUP = "pytest_release.evidence"

__all__ = [
    "EVIDENCE_GROUP",
    "PLATFORMS_GROUP",
    "ROUTERS_GROUP",
    "EvidencePlugin",
    "PlatformPlugin",
    "Registry",
    "RouterPlugin",
    "build_rollout",
    "registry",
    "router_problem",
    "unknown_evidence",
]


@dataclass(frozen=True)
class PlatformPlugin:
    """A platform as it registers (one entry point per ``platform.type`` it serves)."""

    config: type[BaseModel]  # its ``platform`` table; ``type`` a Literal of its name(s)
    build_rollout: str  # "module:function", function(settings, rootdir) -> Rollout
    routers: tuple[str, ...]  # the router types that can split its traffic
    router_hint: str  # how to fix a router that does not fit
    summary: str = ""  # a few words for the generated docs
    # What a CI job running it needs (the workflow generator reads them through the gate):
    extra: str = ""  # the pytest-release extra its code imports ("kubernetes")
    ci_credentials: tuple[str, ...] = ()  # "kubeconfig" (a KUBECONFIG secret), "google"
    # "module:function", function(platform table, rootdir, lease path): a watchdog that
    # takes the canary's traffic away when the stage holding the lease dies; "" for none.
    lease_watch: str = ""
    # "module:function", function(rootdir, state directory) -> list[str]: ends what the
    # platform (and its router) keep running under a state directory, from its state
    # files, and says what it ended (``python -m pytest_release.canary.teardown``).
    teardown: str = ""
    state_files: tuple[str, ...] = ()  # names in a state directory that mean it kept some
    # An observing platform: an external controller (Argo Rollouts) deploys, sets weights,
    # promotes and rolls back; the stage only reads (canary/observing.py), so the canary
    # gate runs the observing steps and never a write or a rollback of its own.
    observes: bool = False


@dataclass(frozen=True)
class RouterPlugin:
    """A router as it registers (its entry point's name is its ``router.type``)."""

    config: type[BaseModel]  # its ``router`` table
    summary: str  # a few words for the generated docs ("a local HAProxy; local platforms only")
    capabilities: RouterCapabilities = field(default_factory=RouterCapabilities)
    default: bool = False  # the router of a gate without a router table (HAProxy)
    # "module:function", function(router, interval) -> RouterStatsPoller reading its
    # per-version counters (the ``router`` evidence); "" without counters.
    stats_poller: str = ""
    # "module:function", function(router) -> {"stable": matchers, "canary": matchers}: the
    # PromQL label matchers of each version's series in the router's own exporter (used by
    # ``judge.prometheus.template`` = this router's type when no selector is configured).
    metric_selectors: str = ""
    # The PromQL of its exporter's series (``judge.prometheus.template`` = this router's
    # type); None when it offers none.
    prometheus_queries: Queries | None = None


@dataclass(frozen=True)
class EvidencePlugin:
    """An evidence source as it registers (its entry point's name is what a user writes
    in ``judge.evidence``; see :mod:`pytest_release.canary.evidence.source`)."""

    summary: str  # a few words for the generated docs and error messages
    # "module:function", function(table, context) -> CountedSource; "" only for the
    # built-in sampler, whose requests the hold makes itself.
    build: str = ""
    config: type[BaseModel] | None = None  # its ``judge.<name>`` table, validated by it
    router_capability: str = ""  # a RouterCapabilities flag the gate's router must have
    example: str = ""  # its table as the error of a missing one shows it ("judge.x = {...}")
    # "counted": named in judge.evidence, builds a CountedSource; "alerts": on when its
    # table is set (judge.alertmanager), builds an AlertSource asked while a look waits.
    kind: str = "counted"


def _type_values(model: type[BaseModel]) -> tuple[str, ...]:
    """What the table's ``type`` accepts: its Literal values, or its default."""
    field = model.model_fields.get("type")
    if field is None:
        return ()
    if get_origin(field.annotation) is Literal:
        return tuple(str(v) for v in get_args(field.annotation))
    default = field.get_default()
    return (default,) if isinstance(default, str) else ()


def _checked(group: str, name: str, value: object, kind: type[Any]) -> None:
    """A plug-in's entry is usable, or a :class:`ReleaseConfigError` says what to fix."""
    where = f"entry point {name!r} of group {group!r}"
    if not isinstance(value, kind):
        raise ReleaseConfigError(
            f"{where} loads {value!r}, not a pytest_release.canary.registry.{kind.__name__}: "
            f"point it at a {kind.__name__}(...) value"
        )
    if isinstance(value, EvidencePlugin):
        _checked_evidence(where, name, value)
        return
    config = value.config
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise ReleaseConfigError(f"{where}: config = {config!r} must be a pydantic model class")
    queries = value.prometheus_queries if isinstance(value, RouterPlugin) else None
    if queries is not None and not isinstance(queries, Queries):
        raise ReleaseConfigError(
            f"{where}: prometheus_queries = {queries!r} must be a "
            "pytest_release.canary.evidence.prometheus_queries.Queries(...) value or None"
        )
    if name not in _type_values(config):
        raise ReleaseConfigError(
            f"{where}: its config model {config.__name__} must have a field "
            f"type: Literal[{name!r}, ...] (the table's type tells the tables apart); it "
            f"accepts {list(_type_values(config))!r}"
        )
    if not config.__name__.endswith("Config"):
        raise ReleaseConfigError(
            f"{where}: name its config model ...Config (got {config.__name__}): the "
            "configuration's error messages leave such names out of key paths"
        )


def _checked_evidence(where: str, name: str, value: EvidencePlugin) -> None:
    """An evidence source's entry is usable (its name becomes the key of its table)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ReleaseConfigError(
            f"{where}: an evidence source's name is a key of the judge table (judge.<name>): "
            f"lower-case letters, digits and '_', starting with a letter; got {name!r}"
        )
    config = value.config
    if config is not None and not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise ReleaseConfigError(
            f"{where}: config = {config!r} must be a pydantic model class (its judge.{name} "
            "table) or None"
        )
    if config is not None and not config.__name__.endswith("Config"):
        raise ReleaseConfigError(
            f"{where}: name its config model ...Config (got {config.__name__}): the "
            "configuration's error messages leave such names out of key paths"
        )
    if value.kind not in ("counted", "alerts"):
        raise ReleaseConfigError(
            f"{where}: kind = {value.kind!r} must be 'counted' (named in judge.evidence) or "
            "'alerts' (on when its judge table is set)"
        )
    if value.kind == "alerts" and config is None:
        raise ReleaseConfigError(
            f"{where}: an 'alerts' source is switched on by its table judge.{name}: give "
            "its config model"
        )
    module, _, function = value.build.partition(":")
    if name != "sampler" and not (module and function):
        raise ReleaseConfigError(
            f"{where}: build = {value.build!r} must name the function building the source as "
            "'module:function', e.g. 'my_evidence:build'"
        )
    flags = RouterCapabilities.__dataclass_fields__
    if value.router_capability and (
        value.router_capability not in flags or flags[value.router_capability].type != "bool"
    ):
        raise ReleaseConfigError(
            f"{where}: router_capability = {value.router_capability!r} is not a router "
            f"capability; one of {[n for n, f in flags.items() if f.type == 'bool']!r} or ''"
        )


@dataclass(frozen=True)
class Registry:
    """The platforms, routers and evidence sources found, by name (built-ins first)."""

    platforms: Mapping[str, PlatformPlugin]
    routers: Mapping[str, RouterPlugin]
    evidence: Mapping[str, EvidencePlugin] = field(default_factory=dict)

    def evidence_source(self, name: str) -> EvidencePlugin:
        try:
            return self.evidence[name]
        except KeyError:
            raise ReleaseConfigError(unknown_evidence(name, self.evidence)) from None

    def platform(self, name: str) -> PlatformPlugin:
        try:
            return self.platforms[name]
        except KeyError:
            raise ReleaseConfigError(
                f"platform.type = {name!r} is not a registered platform; registered: "
                f"{', '.join(repr(n) for n in self.platforms)} (a platform plug-in registers "
                f"under the entry point group {PLATFORMS_GROUP!r}; install it)"
            ) from None

    def platform_models(self) -> tuple[type[BaseModel], ...]:
        return tuple(dict.fromkeys(p.config for p in self.platforms.values()))

    def router_models(self) -> tuple[type[BaseModel], ...]:
        return tuple(dict.fromkeys(r.config for r in self.routers.values()))

    def default_router(self) -> type[BaseModel]:
        defaults = [r.config for r in self.routers.values() if r.default]
        if not defaults:
            raise ReleaseConfigError(
                f"no router registered under {ROUTERS_GROUP!r} is the default: pytest-release "
                "is not installed completely; reinstall it (pip install pytest-release)"
            )
        return defaults[0]


def unknown_evidence(name: str, registered: Iterable[str]) -> str:
    """The error of a ``judge.evidence`` name nobody registers."""
    return (
        f"{name!r} is not a registered evidence source; registered: "
        f"{', '.join(repr(n) for n in registered)} (an evidence plug-in registers more under "
        f"the entry point group {EVIDENCE_GROUP!r}: install it)"
    )


def _load(points: Iterable[EntryPoint], group: str, kind: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}
    # pytest-release's own entries first, then by name: a fixed order for the docs.
    ordered = sorted(
        (point for point in points if point.group == group),
        key=lambda ep: (ep.dist is None or ep.dist.name != "pytest-release", ep.name),
    )
    for point in ordered:
        owner = point.dist.name if point.dist is not None else "?"
        if point.name in found:
            if owners[point.name] == owner:
                continue  # the same distribution seen twice on sys.path
            raise ReleaseConfigError(
                f"{group} {point.name!r} is registered twice, by {owners[point.name]} and "
                f"{owner}: uninstall one of them"
            )
        try:
            value = point.load()
        except Exception as exc:
            raise ReleaseConfigError(
                f"entry point {point.name!r} of group {group!r} ({point.value}, from {owner}) "
                f"cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        _checked(group, point.name, value, kind)
        found[point.name] = value
        owners[point.name] = owner
    return found


@functools.cache
def registry() -> Registry:
    """The platforms and routers of every installed distribution (loaded once)."""
    from importlib.metadata import distributions

    # One scan of the installed distributions for both groups (a distribution found
    # twice on sys.path is skipped by _load).
    groups = (PLATFORMS_GROUP, ROUTERS_GROUP, EVIDENCE_GROUP)
    points = [ep for dist in distributions() for ep in dist.entry_points if ep.group in groups]
    platforms = _load(points, PLATFORMS_GROUP, PlatformPlugin)
    routers = _load(points, ROUTERS_GROUP, RouterPlugin)
    evidence = _load(points, EVIDENCE_GROUP, EvidencePlugin)
    if not platforms or not routers or "sampler" not in evidence:
        raise ReleaseConfigError(
            f"no platform, no router or no sampler evidence is registered (entry point groups "
            f"{PLATFORMS_GROUP!r}, {ROUTERS_GROUP!r}, {EVIDENCE_GROUP!r}): pytest-release's own "
            "metadata is missing or stale; reinstall it (pip install -e . in a checkout)"
        )
    for name, plugin in platforms.items():
        unknown = [r for r in plugin.routers if r not in routers]
        if unknown:
            raise ReleaseConfigError(
                f"platform {name!r} names router type(s) {unknown!r} that no entry point of "
                f"{ROUTERS_GROUP!r} registers; registered: {list(routers)!r}"
            )
    return Registry(platforms, routers, evidence)


def router_problem(platform_type: str, router_type: str) -> str | None:
    """Why a canary gate's platform and router cannot work together, or None."""
    found = registry()
    entry = found.platform(platform_type)
    if router_type in entry.routers:
        return None
    fits = [name for name, e in found.platforms.items() if router_type in e.routers]
    return (
        f"platform.type = {platform_type!r} cannot be routed by router.type = {router_type!r} "
        f"(that router works with platform.type {' or '.join(repr(f) for f in fits)}): "
        f"{entry.router_hint}"
    )


def build_rollout(settings: CanarySettings, rootdir: Path) -> Rollout:
    """The rollout of ``settings``' platform and router, built by the platform's plug-in."""
    entry = registry().platform(settings.platform.type)
    module, _, function = entry.build_rollout.partition(":")
    build: Callable[[CanarySettings, Path], Rollout] = getattr(
        importlib.import_module(module), function or "build_rollout"
    )
    return build(settings, rootdir)

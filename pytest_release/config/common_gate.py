"""What the spine reads of a gate, whatever its kind: which tests join it, its order, its
coverage threshold, and whether it deploys the release image.

A gate's table is a pydantic model of its kind (:class:`~.tables.GateConfig` or a
subclass); :class:`CommonGateSettings` is the plain value taken from it once validated.
The spine (plan, collection, verdict, coverage, start-up checks) reads only this, so a
stage whose gates are all of kind ``tests`` never needs a model: it runs from a cached
plan (:mod:`.plan_cache`) or an xdist worker's plan without importing pydantic.  Only a
gate kind's own plugin reads its model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_release.config.lazy import BuiltByName
from pytest_release.config.plain_tables import CoverageConfig
from pytest_release.system.json_record import JsonRecord

if TYPE_CHECKING:
    from pytest_release.config.tables import GateConfig


@dataclass(frozen=True)
class CommonGateSettings(JsonRecord):
    """The keys every gate table has (:class:`~.tables.GateConfig`), validated, and the
    answers of its kind the spine asks for."""

    kind: str
    markers: tuple[str, ...]
    paths: tuple[str, ...]
    serial: bool
    after: tuple[str, ...] | None
    allow_empty: bool
    coverage: CoverageConfig | None
    deploys_release_image: bool
    # The gate whose settings this one uses (a canary kind's ``settings_from``), or None.
    settings_from: str | None

    @classmethod
    def of(cls, gate: GateConfig) -> CommonGateSettings:
        other = getattr(gate, "settings_from", None)
        return cls(
            kind=gate.kind,
            markers=gate.markers,
            paths=gate.paths,
            serial=gate.serial,
            after=gate.after,
            allow_empty=gate.allow_empty,
            coverage=gate.coverage,
            deploys_release_image=gate.deploys_release_image(),
            settings_from=other if isinstance(other, str) else None,
        )


def common_settings(
    tables: Mapping[str, GateConfig], known: Mapping[str, CommonGateSettings] | None = None
) -> BuiltByName[CommonGateSettings]:
    """Common settings by gate name: ``known`` ones (a cached plan's, a worker's), the
    others taken from the gate's validated table when first read."""
    return BuiltByName(tables, lambda name: CommonGateSettings.of(tables[name]), known)

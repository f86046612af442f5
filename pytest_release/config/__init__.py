"""The configuration layer: ``[tool.pytest-release]`` read, merged over the defaults and
validated once (:mod:`.release`), its tables (:mod:`.tables`, :mod:`.types`), the checks
across stages (:mod:`.checks`) and gates (:mod:`.gates`, :mod:`.identity`), one line per
problem (:mod:`.errors`), a stage's gate graph (:mod:`.plan`), the option names
(:mod:`.options`) and the generated reference (:mod:`.docs`).

``from pytest_release.config import GateConfig, ReleaseConfig`` keeps working (each name
is imported on first use); new code imports from the module that defines the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_release.config.lazy import lazy_attributes

if TYPE_CHECKING:
    from pytest_release.config.release import ReleaseConfig, load_release_config
    from pytest_release.config.tables import GateConfig, StageConfig

__all__ = ["GateConfig", "ReleaseConfig", "StageConfig", "load_release_config"]

_WHERE = {
    "GateConfig": "tables",
    "StageConfig": "tables",
    "ReleaseConfig": "release",
    "load_release_config": "release",
}

__getattr__ = lazy_attributes(__name__, _WHERE)

"""Frozen dataclasses that travel as JSON between processes and stages.

A tool's condensed result is computed by one process and read back by every other
(:meth:`pytest_release.stage.run_dir.RunDir.run_once`, caches): ``asdict`` writes it,
and reading it back has to undo what JSON loses, tuples that became lists and nested
records that became objects.  :class:`JsonRecord` does both from the field types, so a
record lists its fields once instead of also spelling out its own conversion.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self, Union, get_args, get_origin, get_type_hints

__all__ = ["JsonRecord", "from_json_value"]


@dataclass(frozen=True)
class JsonRecord:
    """Base of a frozen dataclass whose fields are JSON values, tuples of them or other
    dataclasses of the same kind (not necessarily subclasses of this one)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The record :meth:`to_json` wrote; a key that is no field is passed on (and
        refused by the constructor, as a record of another shape should be)."""
        record: Self = from_json_value(cls, data)
        return record


@functools.cache
def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_json_value(kind: Any, raw: Any) -> Any:
    """``raw`` (parsed JSON) as a value of type ``kind``: dataclasses rebuilt from their
    objects, tuples from lists; any other value as it is."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        types_of = _field_types(kind)
        values = {**raw}  # a TypeError when raw is no object, as kind(**raw) would raise
        return kind(
            **{
                key: from_json_value(types_of[key], value) if key in types_of else value
                for key, value in values.items()
            }
        )
    origin = get_origin(kind)
    if origin is tuple:
        items = get_args(kind)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(from_json_value(items[0], value) for value in raw)
        return tuple(from_json_value(item, value) for item, value in zip(items, raw, strict=True))
    if origin in (Union, types.UnionType) and raw is not None:
        # ``X | None`` holding a value: read it as X.
        first = next(item for item in get_args(kind) if item is not type(None))
        return from_json_value(first, raw)
    return raw

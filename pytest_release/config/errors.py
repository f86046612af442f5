"""Pydantic validation errors as the release configuration's messages: one line per
problem, naming the key (``gates.canary.router.port``), the value and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError


def _describe_location(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


_MEMBER = re.compile(r"^(?:[A-Z]\w*(?:Config|Model)|function-\w+\[.*\])$")


def _is_member(part: int | str) -> bool:
    """A union member in an error location (``KubernetesPlatformConfig``), not a key."""
    return isinstance(part, str) and bool(_MEMBER.match(part))


def _union_errors(errors: Sequence[Any]) -> list[Any]:
    """Of a union of tables told apart by ``type`` (platform, router), keep the errors of
    the members whose ``type`` matched; drop the ones that only say the type is another."""
    wrong_type: set[tuple[int | str, ...]] = set()
    members: set[tuple[int | str, ...]] = set()
    for err in errors:
        loc = tuple(err["loc"])
        for i, part in enumerate(loc):
            if _is_member(part):
                members.add(loc[: i + 1])
                if loc[i + 1 :] == ("type",):
                    wrong_type.add(loc[: i + 1])
    kept = []
    for err in errors:
        loc = tuple(err["loc"])
        member = next((loc[: i + 1] for i, part in enumerate(loc) if _is_member(part)), None)
        siblings = {m for m in members if member is not None and m[:-1] == member[:-1]}
        if member in wrong_type and siblings - wrong_type:
            continue
        kept.append({**err, "loc": tuple(part for part in loc if not _is_member(part))})
    return kept


def format_errors(source: str, prefix: str, error: ValidationError) -> str:
    lines = [f"invalid release configuration in {source}:"]
    for err in _union_errors(error.errors()):
        key = ".".join(p for p in (prefix, _describe_location(err["loc"])) if p)
        value = err.get("input")
        # A dataclass table (:mod:`.plain_tables`) reports the same two problems under
        # other names than a model does.
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            lines.append(f"  {key}: unknown key (value {value!r}); check the spelling")
        elif err["type"] in ("missing", "missing_argument"):
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key} = {value!r}: {err['msg']}")
    return "\n".join(lines)

"""One gate's tests split across runners: ``--release-shard=K/N`` keeps the items whose
node id hashes into shard K of N (the others are deselected), so N jobs together run
each selected test exactly once.

The hash is blake2b of the node id, not Python's ``hash()`` (salted per process): every
process (the xdist controller, its workers, the other jobs of the matrix) puts an item
in the same shard.  A gate's finalizers (items that close the gate, e.g. a container's
removal) run in every shard, as they belong to whatever the shard started.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pytest_release.config import options

_FORM = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, nodeid: str) -> bool:
        digest = hashlib.blake2b(nodeid.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1


def parse_shard(value: str, origin: str = options.SHARD.flag) -> Shard:
    """``K/N`` with 1 <= K <= N; a usage error naming the value and the form otherwise."""
    match = _FORM.fullmatch(value.strip())
    fix = f"pass {origin}=K/N with 1 <= K <= N, e.g. {origin}=1/3 (shard 1 of 3)"
    if match is None:
        raise pytest.UsageError(f"{origin}={value!r} is not of the form K/N; {fix}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise pytest.UsageError(
            f"{origin}={value!r}: shard {index} of {count} does not exist; {fix}"
        )
    return Shard(index, count)


def shard_option(config: pytest.Config) -> Shard | None:
    """The shard this run keeps (``--release-shard``), None for the whole selection."""
    value = config.getoption(options.SHARD.dest, None)
    return None if value is None else parse_shard(str(value))


def release_shard(config: pytest.Config) -> str | None:
    """The shard's label for the ledger (``"K/N"``); checks the option at start-up."""
    shard = shard_option(config)
    return None if shard is None else shard.label


def keep_shard(
    config: pytest.Config,
    by_gate: dict[str, list[pytest.Item]],
    in_every_shard: Callable[[pytest.Item], bool],
) -> list[pytest.Item]:
    """Drop from ``by_gate`` (in place) the items of other shards and return them; items
    for which ``in_every_shard`` holds (a gate's finalizers) stay."""
    shard = shard_option(config)
    if shard is None:
        return []
    dropped: list[pytest.Item] = []
    for gate, items in by_gate.items():
        keep = [in_every_shard(item) or shard.holds(item.nodeid) for item in items]
        dropped += [item for item, kept in zip(items, keep, strict=True) if not kept]
        by_gate[gate] = [item for item, kept in zip(items, keep, strict=True) if kept]
    return dropped

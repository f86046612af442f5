"""The heaviest tests first, and a small xdist chunk, so that under ``pytest tests -n 2``
the two workers end together.

xdist's ``load`` scheduling hands the collected items out in collection order: each
worker first gets a chunk of ``len(items) / workers / 4`` consecutive items, later more
from the front of what is left whenever its queue runs low.  For this suite, where a
dozen tests take minutes (real clusters, whole pipelines) and thousands take
milliseconds, that has two costs:

* a heavy test collected late starts late, and keeps its worker busy long after the
  other has run out of work;
* moved to the front alone, the heavy tests all land in the *first* worker's first
  chunk (a few hundred items) and run one after another there.

So a test marked ``@pytest.mark.heavy(seconds)`` (its wall seconds in CI) moves to the
front, heaviest first (longest processing time first), and unless the command line gives
``--maxschedchunk`` it is set to 1: each worker starts with two items and is handed the
next one as it finishes one, so the heavy tests go to whichever worker is free.

A worker holds two items, the one it runs and the next (xdist never takes that one
back): so each heavy test is followed by a light one.  Then the first two items (the
first worker's) hold one heavy test, not two, the second worker starts with the second
heavy test, and no heavy test waits behind another on a worker while the other is free.

Heavy tests that cannot run at the same time (``group="name"``: they use the same fixed
ports, and a lock serialises them) are placed side by side, weighed together, with no
light test between them: a group at the front runs on the first worker one after the
other instead of one worker waiting on the lock the other holds.
"""

from __future__ import annotations

import pytest

MARKER = "heavy"
MARKER_HELP = (
    f"{MARKER}(seconds, group=None): a test that takes minutes (its wall seconds in CI); "
    "run first under xdist, a group's tests side by side (tests/support/heavy_first.py)"
)
CHUNK = 1


def _weight(item: pytest.Item) -> tuple[float, str]:
    """(seconds, group) of a marked test; (0, "") for an unmarked one."""
    mark = item.get_closest_marker(MARKER)
    if mark is None:
        return 0.0, ""
    (seconds,) = mark.args
    return float(seconds), str(mark.kwargs.get("group") or "")


def heaviest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the marked tests first, heaviest first, a group's tests
    together and weighed by their sum, each of them (a group as one) followed by the next
    unmarked test; the others keep their order (a stable sort)."""
    weights = {item.nodeid: _weight(item) for item in items}
    groups: dict[str, float] = {}
    for seconds, group in weights.values():
        groups[group] = groups.get(group, 0.0) + seconds

    def key(item: pytest.Item) -> tuple[float, str, float]:
        seconds, group = weights[item.nodeid]
        return -(groups[group] if group else seconds), group, -seconds

    ordered = sorted(items, key=key)
    light = [item for item in ordered if not weights[item.nodeid][0]]
    heavy = ordered[: len(ordered) - len(light)]
    items.clear()
    for index, item in enumerate(heavy):
        items.append(item)
        group = weights[item.nodeid][1]
        following = heavy[index + 1] if index + 1 < len(heavy) else None
        if group and following is not None and weights[following.nodeid][1] == group:
            continue  # a group stays side by side
        if light:
            items.append(light.pop(0))
    items.extend(light)


def small_chunks(config: pytest.Config) -> None:
    """Hand tests out one by one under xdist (``--maxschedchunk=1``), unless the command
    line chose a chunk."""
    if getattr(config.option, "numprocesses", None) and config.option.maxschedchunk is None:
        config.option.maxschedchunk = CHUNK

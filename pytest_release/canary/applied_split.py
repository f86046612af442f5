"""A rollout step's check that the router applies the split the step asked for, as the
router reads it back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_release.errors import GateCheckFailed

if TYPE_CHECKING:
    from pytest_release.canary.router import Weights


def require_split(
    weights: Weights,
    canary: int,
    expected: str,
    props: list[tuple[str, str]],
    *,
    members: bool = False,
) -> None:
    """``weights`` (and, with ``members``, the canary's members) into the step's
    properties; the step fails unless the canary gets ``canary`` %, ``expected`` saying
    what that split means."""
    props += [
        ("router.stable_percent", str(weights.stable)),
        ("router.canary_percent", str(weights.canary)),
    ]
    if members:
        props.append(("router.canary_members", ", ".join(weights.canary_members)))
    if (weights.stable, weights.canary) != (100 - canary, canary):
        raise GateCheckFailed(f"router applies {weights}, expected {expected}")

"""The job matrix of a stage split across runners: one job per gate (``--split-gates``),
or per shard of a gate whose tests run in N jobs (``--shard-gate=STAGE:GATE=N``, each
job ``--release-gate=GATE --release-shard=K/N`` with an artifact suffix of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_release.config.release import ReleaseConfig

# GitHub runs at most 256 jobs of one matrix.
MAX_SHARDS = 256

ShardGates = Sequence[tuple[str, str, int]]  # (stage, gate, N)


def shard_problem(
    config: ReleaseConfig, split_gates: Sequence[str], shard_gates: ShardGates
) -> str | None:
    """What is wrong with the ``--shard-gate`` options (a gate of a split stage, in
    2..256 jobs, named once), or None."""
    seen: set[tuple[str, str]] = set()
    for stage, gate, count in shard_gates:
        flag = f"--shard-gate={stage}:{gate}={count}"
        if stage not in split_gates:
            return f"{flag}: stage {stage!r} is not split across jobs; add --split-gates={stage}"
        gates = config.stage(stage).gates
        if gate not in gates:
            return f"{flag}: stage {stage!r} has no gate {gate!r}; its gates: {', '.join(gates)}"
        if not 2 <= count <= MAX_SHARDS:
            return (
                f"{flag}: N must be 2..{MAX_SHARDS} (the jobs the gate's tests are split "
                f"across; a matrix holds at most {MAX_SHARDS} jobs)"
            )
        if (stage, gate) in seen:
            return f"{flag}: gate {gate!r} of stage {stage!r} is sharded twice; name it once"
        seen.add((stage, gate))
    return None


def shard_counts(shard_gates: ShardGates, stage: str) -> dict[str, int]:
    """Gate -> N for the gates of ``stage`` that run in N jobs by test."""
    return {gate: count for s, gate, count in shard_gates if s == stage}


def split_matrix(gates: Sequence[str], counts: dict[str, int]) -> dict[str, Any]:
    """The matrix: ``gate`` per job, and with sharded gates ``include`` entries that
    also give ``shard``, ``shard-args`` (the pytest arguments) and ``suffix`` (the
    artifacts' and the ledger-from names': ``-GATE`` or ``-GATE-K-of-N``)."""
    if not counts:
        return {"gate": list(gates)}
    include: list[dict[str, str]] = []
    for gate in gates:
        count = counts.get(gate)
        if count is None:
            include.append({"gate": gate, "shard": "", "shard-args": "", "suffix": f"-{gate}"})
            continue
        include += [
            {
                "gate": gate,
                "shard": f"{k}/{count}",
                "shard-args": f"--release-shard={k}/{count}",
                "suffix": f"-{gate}-{k}-of-{count}",
            }
            for k in range(1, count + 1)
        ]
    return {"include": include}

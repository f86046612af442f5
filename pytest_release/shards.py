"""The ledgers of CI jobs: ``merge-ledgers`` unites those of the jobs a job needs (the
stage action runs it; runs are told apart by their ``run_id``), and ``merge-shards``
records one stage run from the runs of its shards: a stage whose gates ran in separate CI jobs
(``--release-gate`` each, a job matrix of the generated workflow) is recorded as run in
full only when every gate of the stage ran in exactly one shard, in full, for the same
release, in the same CI run, and all of them passed.

``python -m pytest_release merge-shards --stage uat --release-id SHA --into LEDGER
FILE...`` reads the shards' ledgers, writes them and the merged record into ``LEDGER``,
and exits 1 (with a ``failed`` record saying why) when a shard is missing, duplicated,
partial, from another CI run, or did not pass.  A shard's own record never satisfies
``requires`` (it is partial); the merged one does when it passed.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What makes two shards parts of one stage run: the CI run (and attempt) they ran in, so
# the same commit and the same configuration (GitHub Actions context in the ledger).
SAME_RUN_KEYS = ("workflow", "run_id", "run_attempt")


@dataclass(frozen=True)
class Merged:
    """The merged record and what was wrong (empty: the stage passed in full)."""

    record: dict[str, Any]
    problems: tuple[str, ...]


def merge_shard_runs(
    runs: Sequence[Mapping[str, Any]],
    *,
    stage: str,
    release_id: str,
    gates: Sequence[str],
) -> Merged:
    """The stage run made of the finished shard runs of ``stage`` for ``release_id``
    among ``runs`` (ledger records), ``gates`` being the stage's configured gates."""
    shards = [
        r
        for r in runs
        if r.get("stage") == stage
        and r.get("release_id") == release_id
        and r.get("only_gates") is not None
        and r.get("finished")
    ]
    problems: list[str] = []
    by_gate: dict[str, list[Mapping[str, Any]]] = {}
    for shard in shards:
        for gate in shard.get("only_gates") or []:
            by_gate.setdefault(str(gate), []).append(shard)
    for gate in gates:
        found = by_gate.get(gate, [])
        if not found:
            problems.append(f"gate {gate!r}: no shard ran it")
        elif len(found) > 1:
            ids = ", ".join(str(s.get("run_id")) for s in found)
            problems.append(f"gate {gate!r}: ran in {len(found)} shards (runs {ids})")
    for gate in sorted(set(by_gate) - set(gates)):
        problems.append(f"gate {gate!r}: a shard ran it, but stage {stage!r} has no such gate")
    for shard in shards:
        name = f"shard {'+'.join(shard.get('only_gates') or [])} (run {shard.get('run_id')})"
        if shard.get("partial"):
            problems.append(f"{name}: not run in full ({shard['partial']})")
        if shard.get("outcome") != "passed":
            problems.append(f"{name}: {shard.get('outcome')}")
    contexts = {_same_run(s) for s in shards}
    if len(contexts) > 1:
        problems.append(
            "the shards come from different CI runs ("
            + "; ".join(
                sorted(", ".join(f"{k}={v}" for k, v in c) or "no CI run" for c in contexts)
            )
            + "): they may not share a commit and configuration"
        )
    images = {s.get("image") for s in shards}
    if len(images) > 1:
        problems.append(f"the shards name different images: {sorted(map(str, images))}")
    record = _record(shards, stage, release_id, problems)
    return Merged(record, tuple(problems))


def _same_run(shard: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    ci = shard.get("ci") or {}
    return tuple((key, str(ci[key])) for key in SAME_RUN_KEYS if key in ci)


def _record(
    shards: Sequence[Mapping[str, Any]], stage: str, release_id: str, problems: Sequence[str]
) -> dict[str, Any]:
    from pytest_release.ledger import LedgerEntry, utc_now

    gates: dict[str, dict[str, Any]] = {}
    for shard in shards:
        for gate in shard.get("only_gates") or []:
            if gate in (shard.get("gates") or {}):
                gates[str(gate)] = dict(shard["gates"][gate])
    now = utc_now()
    entry = LedgerEntry(
        run_id=uuid.uuid4().hex,
        release_id=release_id,
        stage=stage,
        outcome="failed" if problems else "passed",
        started=min((str(s.get("started")) for s in shards), default=now),
        finished=max((str(s.get("finished")) for s in shards), default=now),
        image=next((s.get("image") for s in shards), None),
        gates=gates,
        ci=dict(shards[0].get("ci") or {}) if shards else {},
        message="; ".join(problems) if problems else f"merged from {len(shards)} shards",
        details={"merged_from": [str(s.get("run_id")) for s in shards]},
    )
    return entry.to_json()


def merge_main(argv: Sequence[str]) -> int:
    from pytest_release.errors import LedgerError, ReleaseConfigError
    from pytest_release.ledger import FileLedgerStore, parse_document
    from pytest_release.workflow import load

    p = argparse.ArgumentParser(
        prog="python -m pytest_release merge-shards",
        description="Record a stage whose gates ran in separate jobs (--release-gate) as one "
        "run: passed only when every gate ran once, in full, in the same CI run, and passed.",
    )
    p.add_argument("--stage", required=True, help="the stage the shards ran")
    p.add_argument("--release-id", required=True, help="the release the shards ran for")
    p.add_argument(
        "--release-config",
        action="append",
        default=[],
        metavar="FILE",
        help="the release configuration layers (the stage's gates come from it)",
    )
    p.add_argument("--into", required=True, type=Path, help="the ledger to write")
    p.add_argument("sources", nargs="*", type=Path, help="the shards' ledger files")
    args = p.parse_args(argv)
    try:
        config = load(args.release_config, Path.cwd())
        if args.stage not in config.stages:
            raise ReleaseConfigError(
                f"--stage {args.stage!r} is not configured; stages: {', '.join(config.stages)}"
            )
        merge_ledgers(args.sources, args.into)
        store = FileLedgerStore(args.into)
        runs = [run for run in parse_document(args.into.read_text(encoding="utf-8"), "ledger")]
        merged = merge_shard_runs(
            runs,
            stage=args.stage,
            release_id=args.release_id,
            gates=list(config.stage(args.stage).gates),
        )
        store.modify(lambda existing: [*existing, merged.record])
    except (LedgerError, ReleaseConfigError, OSError) as exc:
        print(f"pytest_release merge-shards: {exc}", file=sys.stderr)
        return 2
    if merged.problems:
        print(
            f"stage {args.stage} of release {args.release_id}: not run in full — "
            + "; ".join(merged.problems),
            file=sys.stderr,
        )
        return 1
    print(f"stage {args.stage} of release {args.release_id}: {merged.record['message']}")
    return 0


def merge_ledgers(sources: Sequence[Path], into: Path) -> int:
    """Unite the runs of ``sources`` (ledger files) and ``into`` by ``run_id``; a finished
    record wins over a running one. Returns the number of runs written."""
    from pytest_release.ledger import FileLedgerStore, parse_document

    documents = [(str(p), p.read_text(encoding="utf-8")) for p in sources]
    incoming = [run for location, text in documents for run in parse_document(text, location)]

    def change(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_id: dict[str, dict[str, Any]] = {}
        for run in [*runs, *incoming]:
            key = str(run.get("run_id"))
            known = by_id.get(key)
            if known is None or (known.get("finished") is None and run.get("finished")):
                by_id[key] = run
        return sorted(by_id.values(), key=lambda r: str(r.get("started", "")))

    store = FileLedgerStore(into)
    store.modify(change)
    return len(store.read())


def merge_ledgers_main(argv: Sequence[str]) -> int:
    from pytest_release.errors import LedgerError

    p = argparse.ArgumentParser(
        prog="python -m pytest_release merge-ledgers",
        description="Unite ledger files (of the jobs this one needs) into one.",
    )
    p.add_argument("--into", required=True, type=Path, help="the ledger to write")
    p.add_argument("sources", nargs="*", type=Path, help="ledger files to merge in")
    args = p.parse_args(argv)
    try:
        count = merge_ledgers(args.sources, args.into)
    except (LedgerError, OSError) as exc:
        print(f"pytest_release merge-ledgers: {exc}", file=sys.stderr)
        return 2
    print(f"ledger {args.into}: {count} runs from {len(args.sources)} file(s)")
    return 0

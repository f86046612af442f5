"""The ledgers of CI jobs: ``merge-ledgers`` unites those of the jobs a job needs (the
stage action runs it; runs are told apart by their ``run_id``), and ``merge-shards``
records one stage run from the runs of its shards: a stage whose gates ran in separate CI jobs
(``--release-gate`` each, a job matrix of the generated workflow) is recorded as run in
full only when every gate of the stage ran in exactly one shard, in full, for the same
release, in the same CI run, and all of them passed.

``python -m pytest_release merge-shards --stage uat --release-id SHA --into LEDGER
FILE...`` reads the shards' ledgers, writes them and the merged record into ``LEDGER``,
and exits 1 (with a ``failed`` record saying why) when a shard is missing, duplicated,
partial, from another CI run, or did not pass.  A gate may also run in N jobs by
test (``--release-shard=K/N`` each): it is covered when the runs 1/N..N/N of one N are
all there, each once.  A shard's own record never satisfies
``requires`` (it is partial); the merged one does when it passed.
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from collections.abc import Collection, Mapping, Sequence
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
    allow_empty: Collection[str] = (),
) -> Merged:
    """The stage run made of the finished shard runs of ``stage`` for ``release_id``
    among ``runs`` (ledger records), ``gates`` being the stage's configured gates (those
    in ``allow_empty`` may have run no test).

    A gate is covered by one run of it unsharded, or by the runs 1/N..N/N of one N
    (``--release-shard``), each exactly once."""
    shards = [
        r
        for r in runs
        if r.get("stage") == stage
        and r.get("release_id") == release_id
        and (r.get("only_gates") is not None or r.get("shard") is not None)
        and r.get("finished")
    ]
    problems: list[str] = []
    by_gate: dict[str, list[Mapping[str, Any]]] = {}
    for shard in shards:
        for gate in _gates_of(shard, gates):
            by_gate.setdefault(gate, []).append(shard)
    for gate in gates:
        problems += _coverage_problems(gate, by_gate.get(gate, []))
    for gate in sorted(set(by_gate) - set(gates)):
        problems.append(f"gate {gate!r}: a shard ran it, but stage {stage!r} has no such gate")
    for shard in shards:
        name = f"shard {_name(shard, gates)}"
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
    merged_gates = {gate: _merged_gate(gate, by_gate[gate]) for gate in gates if gate in by_gate}
    if not problems:
        # Each shard may select no test of a gate; together they must select some.
        problems += [
            f"gate {gate!r}: no shard selected any of its tests"
            for gate, result in merged_gates.items()
            if gate not in allow_empty and not _total(result)
        ]
    record = _record(shards, stage, release_id, problems, merged_gates)
    return Merged(record, tuple(problems))


def _gates_of(shard: Mapping[str, Any], gates: Sequence[str]) -> list[str]:
    """The gates a shard run ran: its ``--release-gate`` ones, else the whole stage's."""
    only = shard.get("only_gates")
    return [str(g) for g in only] if only is not None else list(gates)


def _name(shard: Mapping[str, Any], gates: Sequence[str]) -> str:
    label = f" {shard['shard']}" if shard.get("shard") else ""
    return f"{'+'.join(_gates_of(shard, gates))}{label} (run {shard.get('run_id')})"


def _coverage_problems(gate: str, found: Sequence[Mapping[str, Any]]) -> list[str]:
    """What keeps the runs ``found`` of ``gate`` from covering it exactly once."""
    if not found:
        return [f"gate {gate!r}: no shard ran it"]
    whole = [s for s in found if not s.get("shard")]
    if whole:
        if len(found) == 1:
            return []
        ids = ", ".join(str(s.get("run_id")) for s in found)
        return [f"gate {gate!r}: ran in {len(found)} shards (runs {ids})"]
    labels = [str(s["shard"]) for s in found]
    malformed = sorted({label for label in labels if not re.fullmatch(r"\d+/\d+", label)})
    if malformed:
        return [f"gate {gate!r}: shard label(s) {', '.join(malformed)} are not of the form K/N"]
    counts = sorted({label.split("/")[1] for label in labels}, key=int)
    if len(counts) > 1:
        return [
            f"gate {gate!r}: its shards split it in different numbers ({', '.join(labels)}); "
            "run the shards 1/N..N/N of one N"
        ]
    count = int(counts[0])
    problems = []
    missing = [f"{k}/{count}" for k in range(1, count + 1) if f"{k}/{count}" not in labels]
    if missing:
        problems.append(f"gate {gate!r}: shard(s) {', '.join(missing)} missing")
    for label in sorted(set(labels), key=lambda v: int(v.split("/")[0])):
        runs = [s for s in found if s["shard"] == label]
        if len(runs) > 1:
            ids = ", ".join(str(s.get("run_id")) for s in runs)
            problems.append(f"gate {gate!r}: shard {label} ran {len(runs)} times (runs {ids})")
    return problems


_COUNTS = ("passed", "failed", "skipped", "not_run", "xfailed")


def _total(result: Mapping[str, Any]) -> int:
    return sum(int(result.get(key) or 0) for key in _COUNTS)


def _merged_gate(gate: str, found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One gate's result over the runs that ran it: counts and durations added."""
    results = [dict(s["gates"][gate]) for s in found if gate in (s.get("gates") or {})]
    if len(results) == 1:
        return results[0]
    merged: dict[str, Any] = {key: sum(int(r.get(key) or 0) for r in results) for key in _COUNTS}
    merged["duration"] = round(sum(float(r.get("duration") or 0) for r in results), 3)
    merged["closed"] = next((r["closed"] for r in results if r.get("closed")), None)
    statuses = [str(r.get("status")) for r in results]
    if "failed" in statuses:
        merged["status"] = "failed"
    else:
        merged["status"] = next((s for s in statuses if s != "empty"), "empty")
    return merged


def _same_run(shard: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    ci = shard.get("ci") or {}
    return tuple((key, str(ci[key])) for key in SAME_RUN_KEYS if key in ci)


def _record(
    shards: Sequence[Mapping[str, Any]],
    stage: str,
    release_id: str,
    problems: Sequence[str],
    gates: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    from pytest_release.ledger.ledger import LedgerEntry, utc_now

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


def _parse_with_ledgers(
    parser: argparse.ArgumentParser, argv: Sequence[str], sources: str
) -> argparse.Namespace:
    """``argv`` parsed with ``parser`` and the arguments both merge commands end with: the
    ledger to write (``--into``) and the ledger files to read (``sources`` says which)."""
    parser.add_argument("--into", required=True, type=Path, help="the ledger to write")
    parser.add_argument("sources", nargs="*", type=Path, help=sources)
    return parser.parse_args(argv)


def merge_main(argv: Sequence[str]) -> int:
    from pytest_release.errors import LedgerError, ReleaseConfigError
    from pytest_release.ledger.ledger import FileLedgerStore, parse_document
    from pytest_release.workflow.workflow import load

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
    args = _parse_with_ledgers(p, argv, "the shards' ledger files")
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
            allow_empty={name for name, gate in config.gates.items() if gate.allow_empty},
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
    from pytest_release.ledger.ledger import FileLedgerStore, parse_document

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
    args = _parse_with_ledgers(p, argv, "ledger files to merge in")
    try:
        count = merge_ledgers(args.sources, args.into)
    except (LedgerError, OSError) as exc:
        print(f"pytest_release merge-ledgers: {exc}", file=sys.stderr)
        return 2
    print(f"ledger {args.into}: {count} runs from {len(args.sources)} file(s)")
    return 0

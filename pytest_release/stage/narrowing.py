"""What a run left out of its gates: test files on disk that match a gate's ``paths``
(and pytest's ``python_files``) but that pytest never looked at.

``--ignore``, ``--ignore-glob``, ``collect_ignore`` in a conftest or a narrower path
argument (``pytest --stage=uat tests/smoke``) drop such files before any item exists, so
no deselection count sees them. The gates' configured paths are the reference: a file
they name that was not collected makes the run partial, whatever dropped it.

Every collecting process (the only one, or each xdist worker) notes the files it looked
at (:class:`VisitedFiles`); the process that records the stage compares them with the
disk (:func:`uncollected_files`).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_release.gating.collect import matches_paths
from pytest_release.ledger.stage_run import StageRun

# Directories pytest never collects from, whatever norecursedirs says.
_ALWAYS_SKIPPED = frozenset({"__pycache__"})


@dataclass(frozen=True)
class Uncollected:
    """Test files of one gate's paths that the run did not collect."""

    gate: str
    files: tuple[str, ...]  # repo-relative, sorted

    def describe(self) -> str:
        return (
            f"gate '{self.gate}': {len(self.files)} test file(s) matching its paths not "
            f"collected, e.g. {self.files[0]} (--ignore, --ignore-glob, collect_ignore or a "
            "narrower path argument)"
        )


def _is_test_file(relpath: str, python_files: Iterable[str]) -> bool:
    name = relpath.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(relpath if "/" in pattern else name, pattern)
        for pattern in python_files
    )


def _gate_paths(run: StageRun) -> list[tuple[str, tuple[str, ...]]]:
    return [(g, paths) for g in run.plan.order if (paths := run.plan.paths.get(g, ()))]


def gate_of_path(run: StageRun, relpath: str) -> str | None:
    """The first gate of the stage, in run order, whose ``paths`` name ``relpath``."""
    for gate, paths in _gate_paths(run):
        if matches_paths(relpath, paths):
            return gate
    return None


class VisitedFiles:
    """Test files of the stage's gate paths that this process was asked to collect."""

    def __init__(self, run: StageRun, python_files: Iterable[str]) -> None:
        self.run = run
        self.python_files = tuple(python_files)
        self.files: set[str] = set()

    def visit(self, path: Path) -> None:
        relpath = self.run.relative(path)
        if _is_test_file(relpath, self.python_files) and gate_of_path(self.run, relpath):
            self.files.add(relpath)

    def write(self, run_dir: Path, worker_id: str) -> None:
        """For the xdist controller (every worker collects the same files)."""
        target = run_dir / f"visited-{worker_id}.json"
        target.write_text(json.dumps(sorted(self.files)), encoding="utf-8")


def read_visited(run_dir: Path) -> set[str]:
    """The files the xdist workers looked at (the union of what each wrote)."""
    files: set[str] = set()
    for path in run_dir.glob("visited-*.json"):
        files.update(str(f) for f in json.loads(path.read_text(encoding="utf-8")))
    return files


def _walk_root(pattern: str) -> str:
    """The directory a pattern can match below: its components before the first glob
    character (a plain path is a directory or a file)."""
    parts = []
    for part in pattern.rstrip("/").split("/"):
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return "/".join(parts)


def _files_below(
    rootdir: Path, start: str, norecursedirs: tuple[str, ...]
) -> Iterator[tuple[str, Path]]:
    top = rootdir / start if start else rootdir
    if top.is_file():
        yield start, top
        return
    for directory, subdirs, files in os.walk(top):
        here = Path(directory)
        # Pruned like pytest prunes its collection: norecursedirs and virtualenvs.
        subdirs[:] = sorted(
            d
            for d in subdirs
            if d not in _ALWAYS_SKIPPED
            and not any(fnmatch.fnmatch(d, p) for p in norecursedirs)
            and not (here / d / "pyvenv.cfg").is_file()
        )
        for name in sorted(files):
            path = here / name
            yield path.relative_to(rootdir).as_posix(), path


def uncollected_files(
    run: StageRun, visited: set[str], python_files: Iterable[str], norecursedirs: Iterable[str]
) -> list[Uncollected]:
    """Per gate, the test files on disk its ``paths`` name that are not in ``visited``."""
    patterns = tuple(python_files)
    skipped_dirs = tuple(norecursedirs)
    missing: dict[str, set[str]] = {}
    starts = {_walk_root(p) for _, paths in _gate_paths(run) for p in paths}
    # A start below another start is walked with it.
    starts = {s for s in starts if not any(o != s and s.startswith(o + "/") for o in starts if o)}
    if "" in starts:
        starts = {""}
    for start in sorted(starts):
        for relpath, _ in _files_below(run.rootdir, start, skipped_dirs):
            if relpath in visited or not _is_test_file(relpath, patterns):
                continue
            gate = gate_of_path(run, relpath)
            if gate is not None:
                missing.setdefault(gate, set()).add(relpath)
    return [
        Uncollected(gate, tuple(sorted(missing[gate])))
        for gate in run.plan.order
        if gate in missing
    ]

"""Coverage threshold for any gate (``coverage = { fail_under = 85, source = [...] }``).

coverage.py measures each of the gate's tests on the process that runs it (every xdist
worker), saving its data in the session's run directory.  A finalizer item,
``coverage``, runs after every other item of the gate (the spine's gate finalizers,
also under xdist), combines the data and fails the gate with the measured percentage and
the threshold when it is below; gates after this one are then closed like after any
failure.  Do not combine with ``--cov`` (pytest-cov) for the same tests: one tracer
measures at a time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gating.collect import is_finalizer
from pytest_release.gating.gate_node import GateItem
from pytest_release.stage.session import GATE_KEY, get_stage_session

if TYPE_CHECKING:
    from pytest_release.config.plain_tables import CoverageConfig
    from pytest_release.gating.gate_node import GateNode
    from pytest_release.stage.session import StageSession

_MEASURING = pytest.StashKey[dict[str, Any]]()  # gate -> coverage.Coverage, per process


def _data_file(session: StageSession, gate: str) -> Path:
    return session.run_dir.path / f".coverage.{re.sub(r'[^A-Za-z0-9_.-]', '_', gate)}"


def _selection(session: StageSession, settings: CoverageConfig) -> dict[str, Any]:
    """coverage.py's ``source`` (directories, packages) and ``include`` (files)."""
    if not settings.source:
        return {"source": [str(session.run.rootdir)]}
    source, include = [], []
    for entry in settings.source:
        path = session.run.rootdir / entry
        if path.is_file():
            include.append(str(path))
        else:
            source.append(str(path) if path.exists() else entry)  # else a package name
    return {"source": source or None, "include": include or None}


def _new_coverage(session: StageSession, gate: str, settings: CoverageConfig, **kw: Any) -> Any:
    try:
        import coverage
    except ImportError:
        raise GateCheckFailed(
            "the gate has a coverage threshold but coverage.py is not installed: "
            "pip install 'pytest-release[coverage]'"
        ) from None
    return coverage.Coverage(
        data_file=str(_data_file(session, gate)),
        branch=settings.branch,
        **_selection(session, settings),
        **kw,
    )


class CoverageCheck(GateItem):
    """``coverage``: the gate's total coverage against its ``fail_under``."""

    gate_finalizer = True

    def runtest(self) -> None:
        from coverage.exceptions import NoDataError

        parent = self.parent
        session = get_stage_session(self.config)
        assert session is not None
        assert parent is not None
        gate = parent.name.removeprefix("gate:")
        settings = session.run.config.common[gate].coverage
        assert settings is not None
        data = _data_file(session, gate)
        parts = sorted(str(p) for p in data.parent.glob(data.name + ".*"))
        combined = _new_coverage(session, gate, settings, data_suffix="combined")
        if parts:
            combined.combine(data_paths=parts, keep=True)
        report = io.StringIO()
        try:
            percent = float(combined.report(file=report, show_missing=True))
        except NoDataError:
            raise GateCheckFailed(
                f"no coverage data for gate '{gate}': none of its tests ran code under "
                f"{', '.join(settings.source) or session.run.rootdir}; check coverage.source"
            ) from None
        self.user_properties += [
            ("coverage_percent", f"{percent:.2f}"),
            ("coverage_fail_under", f"{settings.fail_under:g}"),
        ]
        if percent < settings.fail_under:
            raise GateCheckFailed(
                f"coverage {percent:.1f}% is below the threshold of gate '{gate}': "
                f"{settings.fail_under:g}%\n{report.getvalue().rstrip()}"
            )


@pytest.hookimpl
def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
    if gate_node.common.coverage is None:
        return None
    source = Path(gate_node.run.config.source.split(" + ")[0])
    return [
        CoverageCheck.from_parent(
            gate_node, name="coverage", source_path=source if source.is_file() else None
        )
    ]


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, None, object]:
    """Measure collection too: importing test modules runs the measured modules' top
    level (definitions), which counts for every gate with a threshold, as pytest-cov
    counts it for a whole session."""
    stage = get_stage_session(session.config)
    measuring = []
    if stage is not None:
        for gate in stage.run.plan.order:
            settings = stage.run.config.common[gate].coverage
            if settings is not None:
                cov = _coverage(session.config, stage, gate, settings)
                if cov is not None:
                    measuring.append(cov)
    for cov in measuring:
        cov.start()
    try:
        return (yield)
    finally:
        for cov in reversed(measuring):
            cov.stop()
            cov.save()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    measuring = _measure(item)
    if measuring is None:
        return (yield)
    measuring.start()
    try:
        return (yield)
    finally:
        measuring.stop()
        measuring.save()  # the finalizer may run on another process


def _measure(item: pytest.Item) -> Any:
    gate = item.stash.get(GATE_KEY, None)
    session = get_stage_session(item.config)
    if gate is None or session is None or is_finalizer(item):
        return None
    settings = session.run.config.common[gate].coverage
    if settings is None:
        return None
    return _coverage(item.config, session, gate, settings)


def _coverage(
    config: pytest.Config, session: StageSession, gate: str, settings: CoverageConfig
) -> Any:
    """This process's coverage.py object for ``gate`` (None without coverage.py: the
    coverage item reports the missing tool)."""
    per_gate = config.stash.setdefault(_MEASURING, {})
    if gate not in per_gate:
        try:
            per_gate[gate] = _new_coverage(session, gate, settings, data_suffix=True)
        except GateCheckFailed:
            per_gate[gate] = None
    return per_gate[gate]

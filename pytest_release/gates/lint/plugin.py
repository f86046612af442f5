"""The ``lint`` gate: linters, formatters and type checkers as test items.

Each configured tool (default ``ruff-check``, ``ruff-format``, ``mypy``; also
``black``, ``isort``, ``flake8``, ``bandit``, ``pip-audit``) runs once per session, on
the controller or on one xdist worker (:meth:`RunDir.run_once`), when the gate is
collected; every process then builds the same items from the shared result:

* ``<tool>::status`` - did the tool work?  Fails when it is not installed (with the
  command that installs it), crashed (exit code and stderr), timed out, or printed
  output that could not be read.  A tool that did not run can never look green.
* ``<tool>::<path>`` - one item per file with findings, failing with one
  ``path:line:col code message`` line per finding; its JUnit ``file``/``line`` (and so
  the GitHub annotation) point at the file's first finding.  ``pip-audit`` findings
  are about packages: ``pip-audit::name==version``.

Files without findings get no item: a clean tool shows as its passing status item
alone.  Results are cached in ``<rootdir>/.pytest-release/cache/lint/`` (see
:mod:`pytest_release.gates.lint.runner` for what invalidates them); ``--cache-clear`` or
``cache = false`` in the gate table bypasses the cache.  Configuration:
:mod:`pytest_release.gates.lint.config`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.config.release import gate_location
from pytest_release.gates.gate_hooks import gate_kind_hooks
from pytest_release.gates.lint.config import LintGateConfig, LintToolOptions
from pytest_release.gates.lint.items import LintFindingsItem, LintStatusItem
from pytest_release.gates.lint.model import Finding, ToolResult
from pytest_release.gating.closing import GATE_WORK_PROPERTY
from pytest_release.stage.session import require_stage_session

if TYPE_CHECKING:
    from pytest_release.gating.gate_node import GateNode

__all__ = ["LintFindingsItem", "LintGateConfig", "LintStatusItem", "LintToolOptions"]

# The wall time of running the gate's tools (part of the gate's duration), beside the
# tools' results in what the one process that ran them shares with the others.
RUN_SECONDS = "run_seconds"


def _items(gate_node: GateNode, gate: LintGateConfig) -> list[pytest.Item]:
    from pytest_release.gates.lint.runner import run_gate

    config = gate_node.config
    session = require_stage_session(config)
    run = gate_node.run
    use_cache = not getattr(config.option, "cacheclear", False)

    def compute() -> dict[str, Any]:
        started = time.monotonic()
        results = run_gate(
            gate_node.gate_name, gate, run.rootdir, use_cache=use_cache, redact=session.redact
        )
        raw: dict[str, Any] = {tool: result.to_json() for tool, result in results.items()}
        raw[RUN_SECONDS] = time.monotonic() - started
        return raw

    raw = session.run_dir.run_once(f"lint:{gate_node.gate_name}", compute)
    config_path, config_line = gate_location(run.config, gate_node.gate_name)
    items: list[pytest.Item] = []
    for tool in gate.tools:
        result = ToolResult.from_json(raw[tool])
        status = LintStatusItem.from_parent(
            gate_node,
            name=f"{tool}::status",
            result=result,
            source_path=config_path,
            source_line=config_line,
        )
        if not items:  # the tools ran at collection, concurrently: their wall time, once
            status.user_properties.append((GATE_WORK_PROPERTY, f"{raw[RUN_SECONDS]:.3f}"))
        items.append(status)
        for group, findings in _grouped(result.findings).items():
            failing = [f for f in findings if f.fails]
            if not failing:
                continue  # notes alone do not fail a file
            first = failing[0]
            items.append(
                LintFindingsItem.from_parent(
                    gate_node,
                    name=f"{tool}::{group}",
                    tool=tool,
                    group=group,
                    findings=findings,
                    source_path=run.rootdir / first.path if first.path else config_path,
                    source_line=first.line if first.path else config_line,
                )
            )
    return items


pytest_release_gate_kinds, pytest_release_gate_items = gate_kind_hooks(
    "lint", LintGateConfig, _items
)


def _grouped(findings: tuple[Finding, ...]) -> dict[str, tuple[Finding, ...]]:
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.group, []).append(finding)
    return {name: tuple(groups[name]) for name in sorted(groups)}

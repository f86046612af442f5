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

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gate_node import GateItem
from pytest_release.gates.lint.config import LintGateConfig, LintToolOptions
from pytest_release.gates.lint.model import Finding, ToolResult
from pytest_release.gates.lint.tools import TOOLS
from pytest_release.stage_session import require_stage_session

if TYPE_CHECKING:
    from pytest_release.config import GateConfig
    from pytest_release.gate_node import GateNode

__all__ = ["LintFindingsItem", "LintGateConfig", "LintStatusItem", "LintToolOptions"]


class _LintItem(GateItem):
    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        path, line, _ = super().reportinfo()
        # The domain titles failure sections; pytest's terminal also rewrites a domain
        # that ends the node id, turning "src/app.py" into "src/app::py".
        return path, line, self.name.replace("::", " ", 1)


class LintStatusItem(_LintItem):
    """``<tool>::status``: passes only when the tool ran and reported normally."""

    def __init__(self, *, result: ToolResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.user_properties.extend(
            [
                ("lint_tool", result.tool),
                ("lint_outcome", result.outcome),
                ("lint_exit_code", "" if result.exit_code is None else str(result.exit_code)),
                ("lint_version", result.version),
                ("lint_cached", "true" if result.cached else "false"),
                ("lint_duration", f"{result.duration:.3f}"),
                ("lint_findings", str(sum(f.fails for f in result.findings))),
            ]
        )

    def runtest(self) -> None:
        result = self.result
        if result.ok:
            return
        summary = {
            "missing": f"{result.tool} is not installed or cannot be started",
            "error": f"{result.tool} was not run: its configuration is wrong",
            "timeout": f"{result.tool} timed out",
            "crashed": f"{result.tool} failed to run (exit code {result.exit_code})",
        }.get(result.outcome, f"{result.tool}: {result.outcome}")
        raise GateCheckFailed(f"{result.message}\n{summary}")


class LintFindingsItem(_LintItem):
    """``<tool>::<path>``: the findings of one tool in one file (or package)."""

    def __init__(self, *, tool: str, group: str, findings: tuple[Finding, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.tool = tool
        self.group = group
        self.findings = findings
        self.user_properties.append(("lint_tool", tool))

    def runtest(self) -> None:
        failing = [f for f in self.findings if f.fails]
        if not failing:
            return
        lines = [f.format() for f in self.findings]
        count = f"{len(failing)} problem{'s' if len(failing) != 1 else ''}"
        summary = f"{self.tool}: {count} in {self.group}"
        hint = TOOLS[self.tool].fix_hint
        if hint and self.findings[0].path:
            summary += f"; fix with `{hint.format(path=self.group)}`"
        first = failing[0]
        raise GateCheckFailed("\n".join([*lines, summary]), path=first.path, line=first.line)


@pytest.hookimpl
def pytest_release_gate_kinds() -> dict[str, type[GateConfig]]:
    return {"lint": LintGateConfig}


@pytest.hookimpl
def pytest_release_gate_items(gate_node: GateNode) -> list[pytest.Item] | None:
    gate = gate_node.gate
    if not isinstance(gate, LintGateConfig):
        return None
    from pytest_release.gates.lint.runner import run_gate

    config = gate_node.config
    session = require_stage_session(config)
    run = gate_node.run
    use_cache = not getattr(config.option, "cacheclear", False)

    def compute() -> dict[str, Any]:
        results = run_gate(
            gate_node.gate_name, gate, run.rootdir, use_cache=use_cache, redact=session.redact
        )
        return {tool: result.to_dict() for tool, result in results.items()}

    raw = session.run_dir.run_once(f"lint:{gate_node.gate_name}", compute)
    config_path, config_line = _gate_table_location(run.config.source, gate_node.gate_name)
    items: list[pytest.Item] = []
    for tool in gate.tools:
        result = ToolResult.from_dict(raw[tool])
        items.append(
            LintStatusItem.from_parent(
                gate_node,
                name=f"{tool}::status",
                result=result,
                source_path=config_path,
                source_line=config_line,
            )
        )
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


def _grouped(findings: tuple[Finding, ...]) -> dict[str, tuple[Finding, ...]]:
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.group, []).append(finding)
    return {name: tuple(groups[name]) for name in sorted(groups)}


def _gate_table_location(source: str, gate_name: str) -> tuple[Path | None, int | None]:
    """The configuration file and the line of ``[...gates.<name>]`` in it, if any."""
    path = Path(source)
    if not path.is_file():
        return None, None
    header = re.compile(
        r"^\s*\[\s*(?:tool\.pytest-release\.)?gates\.(?:"
        + re.escape(gate_name)
        + r"|\""
        + re.escape(gate_name)
        + r"\")\s*\]"
    )
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if header.match(line):
                return path, number
    except OSError:
        return path, None
    return path, None

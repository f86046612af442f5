"""The lint gate's items: one per tool and group of findings, plus a status item per tool
so a tool that did not run cannot look green."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_release.errors import GateCheckFailed
from pytest_release.gates.lint.model import Finding, ToolResult
from pytest_release.gates.lint.tools import TOOLS
from pytest_release.gating.gate_node import GateItem

if TYPE_CHECKING:
    pass


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

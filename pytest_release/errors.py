"""Every error pytest-release raises on purpose, rooted at :class:`ReleaseError`.

Each message is meant for the user: what was wrong, the value, where, and how to fix it.
Catch :class:`ReleaseError` for all of them, or one branch::

    ReleaseError
    ├── ReleaseConfigError        [tool.pytest-release] / --release-config is invalid
    │   └── workflow.WorkflowError    the GitHub workflow cannot be generated from it
    ├── LedgerError               the ledger cannot be read or written, or is locked
    ├── GateCheckFailed           a generated check failed (shown as is, no traceback)
    ├── GateSetupError            a gate could not run its tool or read its input
    │   ├── gates.docker.engine.DockerUnavailable
    │   ├── gates.docker.dependencies.DependencyFailed
    │   ├── gates.lint.tools.ParseError
    │   ├── gates.newman.collection.CollectionError
    │   └── gates.newman.collection_run.NewmanSetupError
    ├── EvidenceError             an evidence source (e.g. Prometheus) could not answer
    └── RolloutError              a rollout step did not reach the state it must reach
        ├── PlatformError         the platform could not start, stop or report replicas
        │   └── canary.platforms.kubernetes.client.KubeApiError
        │       └── KubeUnreachable   the API server did not answer
        └── RouterError           the router could not be started, changed or read
"""

from __future__ import annotations

__all__ = [
    "EvidenceError",
    "GateCheckFailed",
    "GateSetupError",
    "LedgerError",
    "PlatformError",
    "ReleaseConfigError",
    "ReleaseError",
    "RolloutError",
    "RouterError",
]


class ReleaseError(Exception):
    """Root of every error pytest-release raises on purpose."""


class ReleaseConfigError(ReleaseError):
    """A configuration problem, phrased for the user (file, key, value, what is allowed)."""


class LedgerError(ReleaseError):
    """The ledger cannot be read or written; the message says why and what to do."""


class GateCheckFailed(ReleaseError):
    """A generated check failed; the message is shown as is (no traceback)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line


class GateSetupError(ReleaseError):
    """A gate could not run its tool or read its input (tool missing, daemon down, file
    unreadable); its items fail with this message instead of a verdict."""


class EvidenceError(ReleaseError):
    """An evidence source could not answer; the message names the query, the server and
    the reason.  Never a pass."""


class RolloutError(ReleaseError):
    """A rollout step did not reach the state it must reach; the message says which."""


class PlatformError(RolloutError):
    """A platform operation failed; the message says what, where, and what to do."""


class RouterError(RolloutError):
    """The router could not be started, changed, or read; the message says why."""

"""Built-in stages and gates, so an empty ``[tool.pytest-release]`` table works.

These are raw TOML-shaped tables; user tables are merged over them key by key and the
result is validated like user input (one code path, one set of error messages).
"""

from __future__ import annotations

from typing import Any


def _gate(name: str, description: str, **settings: str) -> dict[str, Any]:
    """A built-in gate whose tests live in ``tests/<name>/`` or ``suites/<name>/``."""
    return {
        **settings,
        "description": description,
        "paths": [f"tests/{name}/*", f"suites/{name}/*"],
    }


DEFAULT_GATES: dict[str, dict[str, Any]] = {
    "lint": {"kind": "lint", "description": "Static checks: linters and type checkers."},
    "unit": _gate("unit", "Fast tests of single units."),
    "integration": _gate("integration", "Tests across components and real dependencies."),
    "docker": _gate(
        "docker", "The service image: build, run, health and image checks.", kind="docker"
    ),
    "e2e": _gate("e2e", "Browser end-to-end tests (pytest-playwright).", kind="e2e"),
    "newman": _gate("newman", "Postman collections run by newman.", kind="newman"),
    "build": _gate("build", "Build, tag and push the release image."),
    "canary": _gate(
        "canary",
        "Canary rollout step: deploy, shift traffic, judge, promote or roll back.",
        kind="canary",
    ),
    "smoke": _gate("smoke", "Production smoke checks; a failure rolls back."),
    "rollback": _gate(
        "rollback", "Emergency rollback, asserted.", kind="canary", settings_from="canary"
    ),
}


DEFAULT_STAGES: dict[str, dict[str, Any]] = {
    "uat": {
        "description": "User acceptance: lint, unit, integration, docker, e2e, newman.",
        "gates": ["lint", "unit", "integration", "docker", "e2e", "newman"],
        "requires": [],
    },
    "build": {
        "description": "Build and push the release image.",
        "gates": ["build"],
        "requires": ["uat"],
    },
    "canary-1": {
        "description": "1 canary replica at 10% traffic.",
        "gates": ["canary"],
        "requires": ["build"],
        "rollout": {"action": "canary", "replicas": 1, "weight": 10, "hold": "15m"},
    },
    "canary-2": {
        "description": "2 canary replicas at 50% traffic.",
        "gates": ["canary"],
        "requires": ["canary-1"],
        "rollout": {"action": "canary", "replicas": 2, "weight": 50, "hold": "30m"},
    },
    "canary-3": {
        "description": "Main deployment updated, 100% traffic, canary cleaned up.",
        "gates": ["canary"],
        "requires": ["canary-2"],
        "rollout": {"action": "promote", "replicas": 3, "weight": 100, "hold": "0s"},
    },
    "smoke": {
        "description": "Smoke checks against production.",
        "gates": ["smoke"],
        "requires": ["canary-3"],
    },
    "rollback": {
        "description": "Emergency rollback to the previous version.",
        "gates": ["rollback"],
        "requires": [],
        "rollout": {"action": "rollback", "replicas": 0, "weight": 0, "hold": "0s"},
    },
}

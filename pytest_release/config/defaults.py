"""Built-in stages and gates, so an empty ``[tool.pytest-release]`` table works.

These are raw TOML-shaped tables; user tables are merged over them key by key and the
result is validated like user input (one code path, one set of error messages).
"""

from __future__ import annotations

from typing import Any

DEFAULT_GATES: dict[str, dict[str, Any]] = {
    "lint": {"kind": "lint", "description": "Static checks: linters and type checkers."},
    "unit": {
        "description": "Fast tests of single units.",
        "paths": ["tests/unit/*", "suites/unit/*"],
    },
    "integration": {
        "description": "Tests across components and real dependencies.",
        "paths": ["tests/integration/*", "suites/integration/*"],
    },
    "docker": {
        "kind": "docker",
        "description": "The service image: build, run, health and image checks.",
        "paths": ["tests/docker/*", "suites/docker/*"],
    },
    "e2e": {
        "kind": "e2e",
        "description": "Browser end-to-end tests (pytest-playwright).",
        "paths": ["tests/e2e/*", "suites/e2e/*"],
    },
    "newman": {
        "kind": "newman",
        "description": "Postman collections run by newman.",
        "paths": ["tests/newman/*", "suites/newman/*"],
    },
    "build": {
        "description": "Build, tag and push the release image.",
        "paths": ["tests/build/*", "suites/build/*"],
    },
    "canary": {
        "kind": "canary",
        "description": "Canary rollout step: deploy, shift traffic, judge, promote or roll back.",
        "paths": ["tests/canary/*", "suites/canary/*"],
    },
    "smoke": {
        "description": "Production smoke checks; a failure rolls back.",
        "paths": ["tests/smoke/*", "suites/smoke/*"],
    },
    "rollback": {
        "kind": "canary",
        "settings_from": "canary",
        "description": "Emergency rollback, asserted.",
        "paths": ["tests/rollback/*", "suites/rollback/*"],
    },
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

"""Catalogue: an environment that could act on production's deployment is a configuration
error at load time (issue 24, item 3).

An ``[environments.<name>]`` table that leaves a canary gate's deployment identity as
production's (no overrides, or overrides that keep the state directory, the router port,
the namespace, the service, ...) made a ``target = "<name>"`` stage deploy to and switch
production's router; one that only reused production's router port ran and ended
``rollback-failed``.  Now every such configuration is refused with exit 4, naming the
environment, the keys, their values and the fix, before anything is deployed.

Cases (test -> what is refused):

* ``test_staging_without_its_own_deployment_is_refused_before_production_is_touched`` —
  no overrides at all (real HAProxy and replicas: production stays on v1).
* ``test_staging_on_productions_router_port_is_refused_before_it_deploys`` — its own
  state directory but production's HAProxy port (real production running on it).
* ``test_every_stage_is_refused_not_only_the_environments`` — the check is of the
  configuration, so a unit-test stage of the same file stops too.
* ``test_shared_identity_is_refused_per_platform`` — per platform and router: local
  (state_dir, spelled differently too; front port; front port = another's metrics port),
  kubernetes + traefik / gateway (namespace + Deployment, app label, routing object, per
  cluster context), cloud-run (project/region/service); another environment as the owner;
  a rollback-only stage (``settings_from``).
* ``test_environments_with_their_own_deployment_are_accepted`` — what differs enough.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_release.config.release import load_release_config
from pytest_release.errors import ReleaseConfigError
from pytest_release.gates import builtin_gate_kinds
from tests.canary.canary_support import bootstrap_main, canary_toml, new_port
from tests.canary.test_staging import STAGING_STATE, _state, two_environments
from tests.faults.test_bad_input import assert_no_ledger
from tests.support.spine import assert_usage_error, project, run_stage

__all__ = ["two_environments"]  # the fixture: both environments' processes are ended

STAGING_STAGE = """
[stages.staging]
target = "staging"
gates = ["canary"]
requires = []
rollout = { action = "promote", replicas = 1, weight = 100, hold = "0s" }
"""


def test_staging_without_its_own_deployment_is_refused_before_production_is_touched(
    pytester: pytest.Pytester, two_environments: Path, xdist: list[str]
) -> None:
    prod = new_port()
    project(
        pytester,
        canary_toml(
            router_port=prod,
            extra='[environments.staging]\ndescription = "Staging"\n' + STAGING_STAGE,
        ),
    )
    bootstrap_main(pytester.path, prod)
    result = run_stage(pytester, "staging", "--image=v2", *xdist)
    assert_usage_error(
        result,
        "*invalid release configuration in *pyproject.toml:",
        "*environments.staging.gates.canary: platform.state_dir = '.pytest-release/canary' "
        "names the local platform state directory * of production too (gates.canary): a stage "
        "targeting 'staging' would deploy to and switch the deployment of production*give "
        "environments.staging.gates.canary its own platform.state_dir, e.g. state_dir = "
        "'.pytest-release/staging'",
        f"*environments.staging.gates.canary: router.port = {prod} names the port HAProxy "
        "listens on (127.0.0.1) of production too (gates.canary)*its own router.port*",
    )
    assert_no_ledger(pytester)
    # Production still runs v1, all traffic to it, and no canary.
    assert _state(pytester.path, ".pytest-release/canary") == ("v1", 0, (100, 0))


def test_staging_on_productions_router_port_is_refused_before_it_deploys(
    pytester: pytest.Pytester, two_environments: Path
) -> None:
    prod = new_port()
    staging = f"""
[environments.staging.gates.canary]
platform = {{ state_dir = "{STAGING_STATE}" }}
router = {{ port = {prod} }}
"""
    project(pytester, canary_toml(router_port=prod, extra=staging + STAGING_STAGE))
    bootstrap_main(pytester.path, prod)
    result = run_stage(pytester, "staging", "--image=v2")
    assert_usage_error(
        result,
        f"*environments.staging.gates.canary: router.port = {prod} names the port HAProxy "
        "listens on (127.0.0.1) of production too (gates.canary)*give "
        "environments.staging.gates.canary its own router.port*",
    )
    assert "state_dir" not in result.stderr.str()  # staging's own directory is fine
    assert_no_ledger(pytester)
    assert not (pytester.path / STAGING_STATE).exists()  # nothing was deployed
    assert _state(pytester.path, ".pytest-release/canary") == ("v1", 0, (100, 0))


def test_every_stage_is_refused_not_only_the_environments(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        canary_toml(
            router_port=new_port(),
            extra='[environments.staging]\n[gates.unit]\npaths = ["tests/unit/*"]\n'
            '[stages.ci]\ngates = ["unit"]\n' + STAGING_STAGE,
        ),
        **{"tests/unit/test_u.py": "def test_u(): pass\n"},
    )
    assert_usage_error(
        run_stage(pytester, "ci"),
        "*environments.staging.gates.canary: platform.state_dir = * of production too*",
    )
    assert_no_ledger(pytester)


# -- per platform and router (the configuration as loaded) -------------------------------
LOCAL = {
    "type": "local-process",
    "command": ["python3", "app.py", "{port}"],
    "stable_image": "v1",
}
KUBERNETES = {"type": "kubernetes", "app": "shop", "namespace": "shop"}
CLOUD_RUN = {
    "type": "cloud-run",
    "project": "acme-shop",
    "region": "europe-west1",
    "service": "shop",
}


def _config(
    production: dict[str, Any],
    environments: dict[str, dict[str, Any]],
    stages: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Production's canary gate and environments that override it, each targeted by a
    promote stage running the canary gate (``stages`` replaces those)."""
    if stages is None:
        stages = {
            name: {
                "target": name,
                "gates": ["canary"],
                "requires": [],
                "rollout": {"action": "promote", "hold": 0},
            }
            for name in environments
        }
    return {
        "gates": {"canary": production},
        "environments": {
            name: {"gates": {"canary": gate}} if gate else {} for name, gate in environments.items()
        },
        "stages": stages,
    }


def _load(table: dict[str, Any]) -> None:
    load_release_config(table, "release.toml", builtin_gate_kinds())


REFUSED = [
    pytest.param(
        _config(
            {"platform": LOCAL},
            {"staging": {"platform": {"state_dir": "./.pytest-release/canary/"}}},
        ),
        [
            "environments.staging.gates.canary: platform.state_dir = '.pytest-release/canary' "
            "names the local platform state directory"
        ],
        id="local-state-dir-spelled-differently",
    ),
    pytest.param(
        _config(
            {"platform": LOCAL, "router": {"metrics_port": 19100}},
            {
                "staging": {
                    "platform": {"state_dir": "s"},
                    "router": {"port": 19100, "metrics_port": 19101},
                }
            },
        ),
        [
            "environments.staging.gates.canary: router.port = 19100 names the port HAProxy "
            "listens on (127.0.0.1) of production too"
        ],
        id="local-front-port-is-productions-metrics-port",
    ),
    pytest.param(
        _config(
            {"platform": LOCAL},
            {"staging": {"platform": {"state_dir": "s"}}, "qa": {"platform": {"state_dir": "s"}}},
        ),
        [
            "environments.qa.gates.canary: platform.state_dir = 's' names the local platform "
            "state directory (its replicas, HAProxy and admin socket) of environment 'staging' "
            "too (environments.staging.gates.canary): a stage targeting 'qa' would deploy to and "
            "switch the deployment of environment 'staging'"
        ],
        id="two-environments-share-one",
    ),
    pytest.param(
        _config(
            {"platform": LOCAL},
            {"staging": {}},
            stages={
                "staging-rollback": {
                    "target": "staging",
                    "gates": ["rollback"],
                    "requires": [],
                    "rollout": {"action": "rollback", "hold": 0, "weight": 0, "replicas": 0},
                }
            },
        ),
        ["environments.staging.gates.canary: platform.state_dir = '.pytest-release/canary'"],
        id="rollback-gate-takes-settings-from-canary",
    ),
    pytest.param(
        _config(
            {"platform": KUBERNETES, "router": {"type": "traefik"}},
            {"staging": {"platform": {"deployment": "shop-staging"}}},
        ),
        [
            "environments.staging.gates.canary: platform.kubeconfig unset, platform.context "
            "unset, platform.namespace = 'shop', platform.app = 'shop' names the pods selected by "
            "app label of production too (gates.canary)",
            "its own platform.namespace (e.g. namespace = 'staging') or cluster",
        ],
        id="kubernetes-same-app-label-in-the-namespace",
    ),
    pytest.param(
        _config(
            {"platform": KUBERNETES, "router": {"type": "traefik"}},
            {"staging": {}},
        ),
        [
            "platform.namespace = 'shop', platform.deployment = 'shop' names the Deployment and "
            "Service of production too",
            "router.namespace = 'shop', router.name = 'shop' names the traefik routing object of "
            "production too",
        ],
        id="kubernetes-no-overrides",
    ),
    pytest.param(
        _config(
            {
                "platform": KUBERNETES,
                "router": {"type": "gateway", "namespace": "edge", "name": "shop"},
            },
            {"staging": {"platform": {"namespace": "shop-staging"}}},
        ),
        [
            "environments.staging.gates.canary: platform.kubeconfig unset, platform.context "
            "unset, router.namespace = 'edge', router.name = 'shop' names the gateway routing "
            "object of production too"
        ],
        id="gateway-httproute-shared-across-namespaces",
    ),
    pytest.param(
        _config(
            {"platform": KUBERNETES, "router": {"type": "traefik"}},
            {"staging": {"platform": {"deployment": "shop-canary", "app": "shop-staging"}}},
        ),
        [
            "environments.staging.gates.canary: platform.kubeconfig unset, platform.context unset, "
            "platform.namespace = 'shop', platform.deployment = 'shop-canary' names the "
            "Deployment and Service of production too"
        ],
        id="kubernetes-main-is-productions-canary",
    ),
    pytest.param(
        _config(
            {"platform": CLOUD_RUN, "router": {"type": "cloud-run"}},
            {"staging": {"platform": {"health_path": "/ready"}}},
        ),
        [
            "environments.staging.gates.canary: platform.api_endpoint unset, platform.project = "
            "'acme-shop', platform.region = 'europe-west1', platform.service = 'shop' names the "
            "Cloud Run service of production too",
            "its own platform.service (e.g. service = 'shop-staging'), region or project",
        ],
        id="cloud-run-same-service",
    ),
]


@pytest.mark.parametrize(("table", "expected"), REFUSED)
def test_shared_identity_is_refused_per_platform(
    table: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ReleaseConfigError) as excinfo:
        _load(table)
    message = str(excinfo.value)
    assert message.startswith("invalid release configuration in release.toml:"), message
    for line in expected:
        assert line in message, message


ACCEPTED = [
    pytest.param(
        _config(
            {"platform": LOCAL, "router": {"port": 18000}},
            {
                "staging": {
                    "platform": {"state_dir": ".pytest-release/staging"},
                    "router": {"port": 18100},
                }
            },
        ),
        id="local-own-state-dir-and-port",
    ),
    pytest.param(
        _config({"platform": LOCAL}, {"staging": {"platform": {"state_dir": "s"}}}),
        id="local-own-state-dir-ports-picked-per-state-dir",
    ),
    pytest.param(
        _config(
            {"platform": KUBERNETES, "router": {"type": "traefik", "name": "shop"}},
            {"staging": {"platform": {"namespace": "shop-staging"}}},
        ),
        id="kubernetes-own-namespace",
    ),
    pytest.param(
        _config(
            {"platform": KUBERNETES, "router": {"type": "traefik"}},
            {"staging": {"platform": {"context": "staging-cluster"}}},
        ),
        id="kubernetes-own-cluster",
    ),
    pytest.param(
        _config(
            {"platform": CLOUD_RUN, "router": {"type": "cloud-run"}},
            {"staging": {"platform": {"service": "shop-staging"}}},
        ),
        id="cloud-run-own-service",
    ),
    pytest.param(
        # Only its variables differ, and no stage targeting it deploys anything.
        _config(
            {"platform": LOCAL},
            {"smoke-env": {}},
            stages={"smoke-env": {"target": "smoke-env", "gates": ["smoke"], "requires": []}},
        ),
        id="environment-whose-stages-deploy-nothing",
    ),
]


@pytest.mark.parametrize("table", ACCEPTED)
def test_environments_with_their_own_deployment_are_accepted(table: dict[str, Any]) -> None:
    _load(table)

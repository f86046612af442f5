"""``python -m pytest_release flagger`` without a cluster: what the generated Canary's
steps, threshold and webhooks say, and bad input as an error naming the value and the fix
(exit 2). The schema is checked by a real API server in
tests/kubernetes/test_flagger_resources.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_release.controllers import flagger_cli
from tests.generator_support import bad_input_test, generate
from tests.test_argo_generator import KUBERNETES


def _run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, *args: str
) -> tuple[int, dict[str, Any], str]:
    code, out, err = generate(flagger_cli.main, tmp_path, capsys, toml, *args)
    document = yaml.safe_load(out) if code == 0 else {}
    return code, document, err


def test_the_steps_mirror_the_canary_stages_and_the_webhooks_the_hooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, canary, err = _run(
        tmp_path, capsys, KUBERNETES, "--webhook-url=http://webhook.shop:8080/",
        "--interval=30", "--pre-rollout-stage=smoke",
    )  # fmt: skip
    assert code == 0, err
    assert canary["metadata"] == {"name": "shop-main", "namespace": "shop"}
    spec = canary["spec"]
    assert spec["provider"] == "traefik"
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-main"}
    analysis = spec["analysis"]
    # canary-1 (10 %) and canary-2 (50 %); canary-3 (promote, 100 %) is Flagger's promotion.
    assert analysis["stepWeights"] == [10, 50]
    assert analysis["interval"] == "30s"
    # Intervals answered 'running': canary-1 (900 s + 120 s) / 30 s = 34, canary-2
    # (1800 s + 120 s) / 30 s = 64, smoke before traffic (0 s + 120 s) / 30 s = 4; plus
    # the 2 failed checks tolerated.
    assert analysis["threshold"] == 34 + 64 + 4 + 2
    hooks = {w["type"]: w for w in analysis["webhooks"]}
    assert list(hooks) == [
        "pre-rollout", "rollout", "rollback", "confirm-promotion", "post-rollout",
    ]  # fmt: skip
    assert hooks["pre-rollout"]["metadata"] == {"stage": "smoke"}
    assert hooks["rollout"]["url"] == "http://webhook.shop:8080/rollout"
    assert "metadata" not in hooks["rollout"]  # the stage comes from the Canary's weight
    assert all(w["timeout"] == "30s" for w in hooks.values())


def test_chosen_stages_and_a_whole_minute_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, canary, err = _run(
        tmp_path, capsys, KUBERNETES, "--webhook-url=http://w:1", "--stages=canary-2",
        "--interval=120", "--failed-checks=5", "--canary-name=shop-canary",
    )  # fmt: skip
    assert code == 0, err
    analysis = canary["spec"]["analysis"]
    assert analysis["stepWeights"] == [50]
    assert analysis["interval"] == "2m"
    assert analysis["threshold"] == 16 + 5  # (1800 + 120) / 120
    assert canary["metadata"]["name"] == "shop-canary"


test_bad_input_is_an_error_naming_the_value_and_the_fix = bad_input_test(
    flagger_cli.main,
    [
        (KUBERNETES, [], "--webhook-url must be the http(s) base URL"),
        (KUBERNETES, ["--webhook-url=webhook:8080"], "(got 'webhook:8080')"),
        (KUBERNETES, ["--webhook-url=http://w", "--interval=5"], "got 5"),
        (KUBERNETES, ["--webhook-url=http://w", "--failed-checks=0"], "got 0"),
        (KUBERNETES, ["--webhook-url=http://w", "--stages=canary-9"], "'canary-9', which"),
        (KUBERNETES, ["--webhook-url=http://w", "--stages=canary-3"], "action 'promote'"),
        (KUBERNETES, ["--webhook-url=http://w", "--pre-rollout-stage=x"], "names 'x'"),
        (
            KUBERNETES,
            ["--webhook-url=http://w", "--stages=canary-2,canary-1"],
            "have the weights [50, 10]",
        ),
        (
            '[tool.pytest-release.gates.canary.platform]\ntype = "local-process"\n'
            'command = ["x"]\n',
            ["--webhook-url=http://w"],
            "the Flagger Canary and its webhooks need platform.type = 'kubernetes'",
        ),
    ],
)

"""Catalogue: bad configuration and options get a clear usage error (exit 4) before
anything runs — never an INTERNALERROR, a traceback, a ledger entry, or a silently
different run (issue 16, items 6 and 7).

Cases (test -> what is refused):

* ``test_non_finite_durations_are_refused`` — rollout ``hold``/``interval`` of ``inf``,
  ``nan`` or a number too large for a float.
* ``test_too_many_judged_intervals_are_refused_at_load`` — ``hold``/``interval`` giving
  more than 10,000 intervals (one case used 23.8 GB and was OOM-killed).
* ``test_absurd_durations_are_refused_with_the_allowed_range`` — ``hold = 1e308`` with
  ``interval = 1e-300`` (an INTERNALERROR OverflowError), and such values in any duration
  field (platform, lint, slack, the ledger lease): a duration is 0 or from 1 ms to 30
  days (issue 24, item 7).
* ``test_an_empty_release_config_file_is_refused`` — an empty ``--release-config`` file,
  ``/dev/null``, a file of comments, an empty ``[tool.pytest-release]`` table or a named
  pyproject.toml without one ran the stage on the built-in defaults (issue 24, item 8).
* ``test_environment_variable_names_are_refused`` — ``env`` tables (environments,
  platform, platform.image_env, the docker gate) with names such as ``"BAD NAME"`` or a
  NUL in a value (an INTERNALERROR when exported) (issue 24, item 8).
* ``test_a_partial_rollout_table_keeps_the_stage_defaults`` — a profile setting only
  ``hold`` of canary-2 silently reset its weight and replicas (found by the weight check).
* ``test_canary_weights_must_increase_along_requires`` — a canary stage whose weight is
  not above the canary stage it requires.
* ``test_canary_step_weight_must_be_between_0_and_100`` — weight 0 or 100 for ``canary``.
* ``test_replicas_beyond_the_router_slots_are_refused`` — HAProxy ``slots`` smaller than
  stable + canary replicas.
* ``test_zero_ready_timeout_is_refused`` — ``platform.ready_timeout = 0``.
* ``test_sampler_without_evidence_is_refused`` — ``sampler.rate = 0`` and
  ``direct_rate = 0`` with HTTP checks on: nothing to judge.
* ``test_http_checks_on_kubernetes_without_sample_pods_are_refused`` — HTTP checks on a
  Kubernetes platform whose pods this process does not sample: nothing to judge.
* ``test_requires_cycles_are_refused`` — a stage requiring itself, or a cycle.
* ``test_requires_of_an_unknown_stage_is_refused`` — ``requires`` naming no stage.
* ``test_stage_without_gates_is_a_config_error`` — ``gates = []``: exit 4, no ledger.
* ``test_empty_stage_option_is_refused`` — ``--stage=`` used to run plain pytest.
* ``test_bad_release_ids_are_refused`` — ``--release-id`` with a newline (GITHUB_OUTPUT
  injection), whitespace, control characters, empty, or over 128 characters.

Already refused before issue 16 and kept here as regression tests (they pass on the code
they were written against): the non-finite durations (``parse_duration`` refuses them),
``ready_timeout = 0`` (``PositiveDuration``) and the unknown stage in ``requires``.
"""

from __future__ import annotations

import json

import pytest

from pytest_release.config.release import load_release_config
from pytest_release.gates import builtin_gate_kinds
from tests.support.pipelines import CI, UNIT_TEST, local_process_canary
from tests.support.spine import assert_usage_error, project, run_ci_with_github_sha, run_stage

SMOKE_TEST = {"tests/smoke/test_s.py": "def test_s(): pass\n"}


# A canary stage whose checks run at session start; --collect-only keeps the current
# (unfixed) code from deploying anything when it accepts the configuration.
def canary(replicas: int, platform: str, extra: str) -> str:
    rollout = f'action = "canary", replicas = {replicas}, weight = 10, hold = "2s", interval = "1s"'
    return local_process_canary(rollout, platform) + extra


def assert_no_ledger(pytester: pytest.Pytester) -> None:
    assert not (pytester.path / ".pytest-release" / "ledger.json").exists()


# -- durations and intervals -------------------------------------------------------------
@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ("hold = inf", "*stages.canary-1.rollout.hold = inf*finite*"),
        ("interval = nan", "*stages.canary-1.rollout.interval = nan*finite*"),
        (f'hold = "{"9" * 400}s"', "*stages.canary-1.rollout.hold = '999*finite*"),
    ],
    ids=["hold-inf", "interval-nan", "hold-overflow"],
)
def test_non_finite_durations_are_refused(
    pytester: pytest.Pytester, rollout: str, expected: str
) -> None:
    project(
        pytester,
        CI + f'[stages.canary-1.rollout]\naction = "canary"\n{rollout}\n',
        **UNIT_TEST,
    )
    assert_usage_error(run_stage(pytester, "ci"), "*invalid release configuration in *", expected)
    assert_no_ledger(pytester)


@pytest.mark.parametrize(
    ("hold", "interval"), [("10001s", "1s"), ("700h", "1ms")], ids=["just-over", "millions"]
)
def test_too_many_judged_intervals_are_refused_at_load(
    pytester: pytest.Pytester, hold: str, interval: str
) -> None:
    # The bad canary stage is not the one run: the configuration is checked as a whole at
    # load time, so nothing builds millions of items (or runs out of memory) first.
    project(
        pytester,
        CI + f'[stages.canary-1.rollout]\nhold = "{hold}"\ninterval = "{interval}"\n',
        **UNIT_TEST,
    )
    assert_usage_error(
        run_stage(pytester, "ci"),
        "*stages.canary-1.rollout: hold = * with interval = * gives * judged intervals; "
        "at most 10000 are allowed*raise interval or shorten hold*",
    )
    assert_no_ledger(pytester)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[stages.canary-1.rollout]\nhold = 1e308\ninterval = 1e-300\n",
            [
                "*stages.canary-1.rollout.hold = 1e+308: Value error, 1e+308 is too long: a "
                "duration is 0 or from 1ms to 30 days (2592000s)",
                "*stages.canary-1.rollout.interval = 1e-300: Value error, 1e-300 is too short: "
                "a duration is 0 or from 1ms to 30 days (2592000s)",
            ],
        ),
        (
            '[gates.canary.platform]\ntype = "local-process"\ncommand = ["x"]\n'
            'ready_timeout = "800h"\n',
            [
                "*gates.canary.platform.ready_timeout = '800h'*too long: a duration is 0 or from "
                "1ms to 30 days*"
            ],
        ),
        (
            "[gates.lint]\ntimeout = 1e-9\n",
            ["*gates.lint.timeout = 1e-09*too short: a duration is 0 or from 1ms to 30 days*"],
        ),
        (
            '[gates.canary.platform]\ntype = "local-process"\ncommand = ["x"]\n'
            '[gates.canary.slack]\nwebhook_env = "SLACK_URL"\ntimeout = inf\n',
            ["*gates.canary.slack.timeout = inf*a duration must be finite*"],
        ),
        (
            "[ledger]\nlease_duration = 100000000000000000000\n",
            [
                "*ledger.lease_duration = 100000000000000000000: Input should be less than or "
                "equal to 2592000"
            ],
        ),
    ],
    ids=[
        "hold-and-interval-overflow",
        "platform-timeout",
        "lint-timeout",
        "slack-timeout",
        "ledger-lease",
    ],
)
def test_absurd_durations_are_refused_with_the_allowed_range(
    pytester: pytest.Pytester, toml: str, expected: list[str]
) -> None:
    project(pytester, CI + toml, **UNIT_TEST)
    assert_usage_error(run_stage(pytester, "ci"), "*invalid release configuration in *", *expected)
    assert_no_ledger(pytester)


# -- configuration files and environment variables ----------------------------------------
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.toml", ""),
        ("/dev/null", None),
        ("comments.toml", "# the stages will come here\n\n"),
        ("tool.toml", "[tool.pytest-release]\n"),
    ],
    ids=["empty", "dev-null", "only-comments", "empty-tool-table"],
)
def test_an_empty_release_config_file_is_refused(
    pytester: pytest.Pytester, name: str, content: str | None
) -> None:
    # The built-in `smoke` stage with its requires overridden ran (and passed) on the
    # defaults: the file the user named must say something.
    project(pytester, CI, **SMOKE_TEST)
    if content is not None:
        (pytester.path / name).write_text(content, encoding="utf-8")
    path = name if content is None else str(pytester.path / name)
    result = run_stage(pytester, "smoke", "--override-requires=testing", f"--release-config={path}")
    assert_usage_error(
        result,
        f"*release configuration file {path} is empty (no settings in it); pass the TOML file "
        "with your stages and gates to --release-config*",
    )
    assert_no_ledger(pytester)


def test_a_named_pyproject_without_the_table_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester, CI, **SMOKE_TEST)
    other = pytester.path / "other" / "pyproject.toml"
    other.parent.mkdir()
    other.write_text('[project]\nname = "shop"\n', encoding="utf-8")
    result = run_stage(
        pytester, "smoke", "--override-requires=testing", "--release-config=other/pyproject.toml"
    )
    assert_usage_error(
        result,
        "*other/pyproject.toml has no [[]tool.pytest-release] table (or an empty one), but "
        "--release-config names it*",
    )
    assert_no_ledger(pytester)


ENV_CI = CI + 'target = "staging"\n'


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            ENV_CI + '[environments.staging]\nenv = { "BAD NAME" = "x" }\n',
            "*environments.staging.env = {'BAD NAME': 'x'}: Value error, 'BAD NAME' is not a "
            "valid environment variable name: use letters, digits and '_', not starting with a "
            "digit (e.g. SHOP_URL)",
        ),
        (
            ENV_CI + '[environments.staging]\nenv = { SHOP_URL = "a\\u0000b" }\n',
            "*environments.staging.env = {'SHOP_URL': 'a\\x00b'}: Value error, the value of "
            "SHOP_URL contains a NUL character*",
        ),
        (
            CI + '[gates.canary.platform]\ntype = "local-process"\ncommand = ["x"]\n'
            'env = { "1ST" = "x" }\n',
            "*gates.canary.platform.env = {'1ST': 'x'}*'1ST' is not a valid environment "
            "variable name*",
        ),
        (
            CI + '[gates.canary.platform]\ntype = "local-process"\ncommand = ["x"]\n'
            '[gates.canary.platform.image_env]\nv2 = { "FAULT RATE" = "1" }\n',
            "*gates.canary.platform.image_env = *v2: 'FAULT RATE' is not a valid environment "
            "variable name*",
        ),
        (
            CI + '[gates.docker]\nenv = { "APP=ENV" = "ci" }\n',
            "*gates.docker.env = {'APP=ENV': 'ci'}*'APP=ENV' is not a valid environment "
            "variable name*",
        ),
    ],
    ids=["environment", "environment-nul-value", "platform", "platform-image-env", "docker"],
)
def test_environment_variable_names_are_refused(
    pytester: pytest.Pytester, toml: str, expected: str
) -> None:
    project(pytester, toml, **UNIT_TEST)
    assert_usage_error(run_stage(pytester, "ci"), "*invalid release configuration in *", expected)
    assert_no_ledger(pytester)


# -- weights, replicas, evidence ----------------------------------------------------------
def test_a_partial_rollout_table_keeps_the_stage_defaults() -> None:
    # The demo profile (suites/demo.toml) sets only hold and interval of canary-2: its
    # rollout table used to replace the built-in one, so canary-2 ran 1 replica at 10 %
    # (the model's defaults) instead of 2 at 50 % — now also a non-increasing weight.
    config = load_release_config(
        {"stages": {"canary-2": {"rollout": {"hold": "12s", "interval": "4s"}}}},
        "demo.toml",
        builtin_gate_kinds(),
    )
    rollout = config.stages["canary-2"].rollout
    assert rollout is not None
    assert (rollout.action, rollout.replicas, rollout.weight, rollout.hold) == (
        "canary",
        2,
        50,
        12.0,
    )


def test_canary_weights_must_increase_along_requires(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        CI
        + "[stages.canary-1.rollout]\nweight = 50\n"
        + "[stages.canary-2.rollout]\nweight = 30\n",
        **UNIT_TEST,
    )
    assert_usage_error(
        run_stage(pytester, "ci"),
        "*stages.canary-2.rollout.weight = 30: must be above 50, the weight of canary stage "
        "'canary-1' before it (requires)*",
    )
    assert_no_ledger(pytester)


@pytest.mark.parametrize("weight", [0, 100])
def test_canary_step_weight_must_be_between_0_and_100(
    pytester: pytest.Pytester, weight: int
) -> None:
    project(
        pytester,
        CI + f"[stages.canary-2.rollout]\nweight = {weight}\n[stages.canary-3]\nrequires = []\n",
        **UNIT_TEST,
    )
    assert_usage_error(
        run_stage(pytester, "ci"),
        f"*stages.canary-2.rollout.weight = {weight}: a canary step sends between 1 and 99 "
        "percent of the traffic to the canary*",
    )
    assert_no_ledger(pytester)


def test_replicas_beyond_the_router_slots_are_refused(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        canary(
            replicas=3,
            platform="stable_replicas = 2",
            extra="[gates.canary.router]\nslots = 4\n",
        ),
    )
    assert_usage_error(
        run_stage(pytester, "canary-1", "--collect-only"),
        "*gates.canary in *pyproject.toml: router.slots = 4 is too small: the stage routes "
        "2 stable (platform.stable_replicas) + 3 canary (stages.canary-1.rollout.replicas) = "
        "5 replicas; raise router.slots*",
    )
    assert_no_ledger(pytester)


def test_zero_ready_timeout_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester, canary(replicas=1, platform="ready_timeout = 0", extra=""))
    assert_usage_error(
        run_stage(pytester, "canary-1", "--collect-only"),
        "*gates.canary.platform.ready_timeout = 0*more than 0 seconds*",
    )
    assert_no_ledger(pytester)


def test_sampler_without_evidence_is_refused(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        canary(
            replicas=1, platform="", extra="[gates.canary.sampler]\nrate = 0\ndirect_rate = 0\n"
        ),
    )
    assert_usage_error(
        run_stage(pytester, "canary-1", "--collect-only"),
        "*gates.canary in *pyproject.toml: sampler: rate = 0 and direct_rate = 0 send no "
        "request*nothing to judge*",
    )
    assert_no_ledger(pytester)


def test_http_checks_on_kubernetes_without_sample_pods_are_refused(
    pytester: pytest.Pytester,
) -> None:
    project(
        pytester,
        """
        [stages.canary-1]
        requires = []
        [gates.canary.platform]
        type = "kubernetes"
        app = "shop"
        [gates.canary.router]
        type = "traefik"
        """,
    )
    assert_usage_error(
        run_stage(pytester, "canary-1", "--collect-only"),
        "*judge.http_checks = true on Kubernetes needs platform.sample_pods = true*",
    )
    assert_no_ledger(pytester)


# -- stages -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (
            '[stages.ci]\ngates = ["unit"]\nrequires = ["ci"]\n',
            "*stages.ci.requires: stage 'ci' requires itself; remove 'ci' from its requires*",
        ),
        (
            '[stages.ci]\ngates = ["unit"]\nrequires = ["b"]\n'
            '[stages.a]\ngates = ["unit"]\nrequires = ["ci"]\n'
            '[stages.b]\ngates = ["unit"]\nrequires = ["a"]\n',
            "*stages.*.requires: the stages a, b, ci require each other in a cycle "
            "(* -> * -> * -> *); none of them could ever run: remove one of these requires*",
        ),
    ],
    ids=["itself", "cycle"],
)
def test_requires_cycles_are_refused(pytester: pytest.Pytester, stages: str, expected: str) -> None:
    project(pytester, '[gates.unit]\npaths = ["tests/unit/*"]\n' + stages, **UNIT_TEST)
    assert_usage_error(run_stage(pytester, "ci"), expected)
    assert_no_ledger(pytester)


def test_requires_of_an_unknown_stage_is_refused(pytester: pytest.Pytester) -> None:
    # Regression test: this was already refused before issue 16.
    project(pytester, CI + 'requires = ["uta"]\n', **UNIT_TEST)
    assert_usage_error(run_stage(pytester, "ci"), "*stages.ci.requires: unknown stage 'uta'*")
    assert_no_ledger(pytester)


def test_stage_without_gates_is_a_config_error(pytester: pytest.Pytester) -> None:
    project(pytester, "[stages.ci]\ngates = []\n", **UNIT_TEST)
    assert_usage_error(
        run_stage(pytester, "ci"),
        "*invalid release configuration in *pyproject.toml:",
        "*stages.ci.gates = []: a stage needs at least one gate*",
    )
    assert_no_ledger(pytester)


def test_empty_stage_option_is_refused(pytester: pytest.Pytester) -> None:
    project(pytester, CI, **UNIT_TEST)
    result = pytester.runpytest_subprocess("--stage=", "--release-id=r1", "-p", "no:cacheprovider")
    assert_usage_error(
        result,
        "*--stage is empty: pass --stage=NAME, one of the stages in *pyproject.toml: uat, *, ci",
    )
    assert_no_ledger(pytester)


# -- release ids ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("release_id", "expected"),
    [
        ("x\nstage_result=passed", "*--release-id = 'x\\nstage_result=passed'*whitespace*"),
        ("v1 beta", "*--release-id = 'v1 beta'*whitespace*"),
        ("v1\x1b[31m", "*--release-id = 'v1\\x1b[[]31m'*control character*"),
        ("", "*--release-id is empty*"),
        ("a" * 129, "*--release-id = 'aaa*129 characters; at most 128*"),
    ],
    ids=["newline", "space", "escape", "empty", "too-long"],
)
def test_bad_release_ids_are_refused(
    pytester: pytest.Pytester, release_id: str, expected: str
) -> None:
    project(pytester, CI, **UNIT_TEST)
    result = run_stage(pytester, "ci", release=release_id)
    assert_usage_error(result, expected)
    assert_no_ledger(pytester)


def test_release_id_from_github_sha_is_checked_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_ci_with_github_sha(pytester, monkeypatch, "abc def")
    assert_usage_error(result, "*$GITHUB_SHA = 'abc def'*whitespace*")
    assert_no_ledger(pytester)


def test_a_good_release_id_still_runs(pytester: pytest.Pytester) -> None:
    project(pytester, CI, **UNIT_TEST)
    result = run_stage(pytester, "ci", release="shop:1.2.3+build.4_ghcr.io/acme@sha256-ab")
    assert result.ret == 0, result.stdout.str()
    runs = json.loads((pytester.path / ".pytest-release/ledger.json").read_text())["runs"]
    assert runs[0]["release_id"] == "shop:1.2.3+build.4_ghcr.io/acme@sha256-ab"

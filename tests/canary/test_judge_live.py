"""The judge on real noise: real replica processes through real HAProxy, with background
errors drawn at random on both versions (``FAULT_BACKGROUND_ERROR_RATE``) as real services
have them.

* a noisy A/A canary (same version, 0.8 % background errors on both) is promoted: single
  errors are not evidence (the seed's per-interval point estimate rolled such canaries
  back in most runs);
* a noisy bad canary (5 % errors over 0.5 % background) is rolled back, with the
  confidence bound or the comparison in the message;
* a canary whose /health flaps (60 % of probes fail at random) is rolled back by the
  failure-share check, with the failed probes per replica in the JUnit properties.

Holds are long enough for the evidence on a loaded machine; nothing here is timed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.canary import canary_support
from tests.canary.canary_support import (
    assert_rollback_steps_passed,
    canary_project,
    canary_root,
    the_failed_look,
)
from tests.support.spine import run_stage, stage_cases

__all__ = ["canary_root"]

# The shipped alphas: these tests are about the default evidence rules.
JUDGE = {"alpha": 0.005, "comparison": {"alpha": 0.005, "min_samples": 30}}


def test_noisy_aa_canary_is_promoted(
    pytester: pytest.Pytester, canary_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_BACKGROUND_ERROR_RATE", "0.008")
    canary_project(pytester, hold="12s", interval="3s", judge=JUDGE)
    result = run_stage(pytester, "canary-1", "--image=v2")
    out = result.stdout.str()
    assert result.ret == 0, out
    cases = stage_cases(canary_root, "canary-1")
    health = [name for name in cases if name.startswith("health@")]
    assert len(health) == 4
    for name in health:
        outcome, message, props = cases[name]
        assert outcome == "passed", message
        assert props["judge.error_rate.verdict"] == "pass"
    assert cases["verdict"][0] == "passed"


def test_noisy_bad_canary_is_rolled_back_with_evidence(
    pytester: pytest.Pytester, canary_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_BACKGROUND_ERROR_RATE", "0.005")
    canary_project(pytester, hold="16s", interval="4s", judge=JUDGE)
    result = run_stage(pytester, "canary-1", "--image=v2-errors")  # 5 % errors on top
    out = result.stdout.str()
    assert result.ret == 1, out
    message, props = the_failed_look(canary_root)
    assert "fail" in (props["judge.error_rate.verdict"], props["judge.compare_error_rate.verdict"])
    assert "confidence bound" in message or "significantly higher than stable" in message
    assert_rollback_steps_passed(canary_root)


def test_flapping_health_is_rolled_back_and_reported_per_replica(
    pytester: pytest.Pytester, canary_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(canary_support.IMAGE_ENV, "v2-flaps", {"FAULT_HEALTH_FLAP": "0.6"})
    judge = {**JUDGE, "max_consecutive_health_failures": False}  # the share must catch it
    # Health is the subject: a loaded machine once pushed stable's own p95 over the limit,
    # an insufficient interval that stopped the stage before the share could decide.
    judge["max_p95_latency_ms"] = 60_000
    # A loaded machine probes less often than asked: a long hold collects the evidence.
    canary_project(pytester, hold="30s", interval="6s", judge=judge)
    result = run_stage(pytester, "canary-1", "--image=v2-flaps")
    assert result.ret == 1, result.stdout.str()
    message, props = the_failed_look(canary_root)
    assert props["judge.health_failure_share.verdict"] == "fail"
    replicas = [k for k in props if k.startswith("judge.health_failure_share.") and "probes" in k]
    assert replicas, props
    probes = int(props[replicas[0]])
    failed_probes = int(props[replicas[0].replace(".probes", ".failed")])
    assert 0 < failed_probes < probes
    assert "/health failures on" in message

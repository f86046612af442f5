"""A third-party evidence source: ``examples/evidence-plugin`` (``judge.evidence =
["counts"]``, per-version counters read from a JSON endpoint) installed with pip into a
directory of its own, found through its entry point (group ``pytest_release.evidence``),
its ``judge.counts`` table validated by its own model, and judging real local canary
stages: the canary passes on clean counts and is rolled back on counted errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_release.canary.registry import registry
from tests.canary.canary_support import (
    assert_rollback_steps_passed,
    canary_project,
    canary_root,
    canary_toml,
    new_port,
    the_failed_look,
)
from tests.canary.plugin_support import registered
from tests.support.examples import installed_example
from tests.support.http_server import serving_reads
from tests.support.spine import XDIST_MODES, ledger_runs, project, run_stage, stage_cases

__all__ = ["canary_root"]
pytestmark = pytest.mark.usefixtures("canary_root")  # ends what the stages started

PER_READ = 200  # requests each version serves between two reads of the endpoint


@pytest.fixture(scope="module")
def counts_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed_example("evidence-plugin", "pytest_release_counts", tmp_path_factory)


@pytest.fixture
def counts_installed(counts_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plug-in importable here and in the stages' processes (PYTHONPATH)."""
    paths = [str(counts_site), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    with registered(counts_site, monkeypatch):
        yield counts_site


@contextmanager
def counts_endpoint(canary_errors: int) -> Iterator[tuple[str, list[int]]]:
    """A JSON endpoint on 127.0.0.1 whose cumulative counters grow by ``PER_READ``
    requests per version at every read, ``canary_errors`` of the canary's failed; its URL
    and the number of reads so far."""

    def counts(n: int) -> tuple[bytes, str]:
        body = {
            "stable": {"requests": n * PER_READ, "errors": 0},
            "canary": {"requests": n * PER_READ, "errors": n * canary_errors},
        }
        return json.dumps(body).encode(), "application/json"

    with serving_reads(counts) as (server, reads):
        yield f"http://127.0.0.1:{server.server_address[1]}/counts", reads


def _judged_by_counts(url: str) -> dict[str, object]:
    return {"evidence": ["counts"], "counts": {"url": url}, "min_requests": 10}


# The stages' own sampler sends no request: the counts are the only HTTP evidence.
QUIET_SAMPLER = {"rate": 0, "direct_rate": 0}


def test_the_registry_finds_the_example_through_its_entry_point(
    counts_installed: Path,
) -> None:
    import counts_evidence

    found = registry()
    assert found.evidence["counts"] is counts_evidence.EVIDENCE
    # The built-ins are found the same way, from pytest-release's own entry points.
    assert {"sampler", "router", "prometheus", "alertmanager"} <= set(found.evidence)
    assert found.evidence["alertmanager"].kind == "alerts"


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_a_canary_with_clean_counts_passes_on_them(
    pytester: pytest.Pytester, counts_installed: Path, xdist: list[str]
) -> None:
    with counts_endpoint(canary_errors=0) as (url, reads):
        canary_project(pytester, sampler=QUIET_SAMPLER, judge=_judged_by_counts(url))
        result = run_stage(pytester, "canary-1", "--image=v2", *xdist)
    assert result.ret == 0, result.stdout.str()
    cases = stage_cases(pytester.path, "canary-1")
    looks = {n: c for n, c in cases.items() if n.startswith("health@")}
    assert len(looks) == 2, cases
    for outcome, _, props in looks.values():
        assert outcome == "passed", cases
        assert props["judge.error_rate.source"] == "counts"
        assert props["judge.error_rate.verdict"] == "pass"
        assert int(props["judge.error_rate.samples"]) >= PER_READ
        assert props["judge.error_rate.requests.counts.canary_errors"] == "0"
    assert reads[0] == 3  # the baseline, then once per look
    assert cases["verdict"][0] == "passed"
    assert ledger_runs(pytester.path)[-1]["outcome"] == "passed"


@pytest.mark.parametrize("xdist", XDIST_MODES)
def test_a_canary_with_counted_errors_is_rolled_back_on_them(
    pytester: pytest.Pytester, counts_installed: Path, xdist: list[str]
) -> None:
    with counts_endpoint(canary_errors=PER_READ // 4) as (url, _):
        canary_project(pytester, sampler=QUIET_SAMPLER, judge=_judged_by_counts(url))
        result = run_stage(pytester, "canary-1", "--image=v2", *xdist)
    assert result.ret == 1, result.stdout.str()
    message, props = the_failed_look(pytester.path)
    failed = [
        c for c in ("error_rate", "compare_error_rate") if props[f"judge.{c}.verdict"] == "fail"
    ]
    assert failed, props
    for check in failed:
        assert props[f"judge.{check}.source"] == "counts"
    assert f"counts ({url}): canary error rate" in message, message
    assert_rollback_steps_passed(pytester.path)
    assert ledger_runs(pytester.path)[-1]["outcome"] == "rolled-back"


def _usage_error(pytester: pytest.Pytester, judge: dict[str, object]) -> list[str]:
    """The lines of the error of a canary-1 stage whose configuration is refused."""
    project(pytester, canary_toml(router_port=new_port(), sampler=QUIET_SAMPLER, judge=judge))
    result = run_stage(pytester, "canary-1", "--image=v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    return [line.strip() for line in result.stderr.lines if line.strip()]


def test_an_unregistered_evidence_source_is_a_usage_error_naming_the_registered_ones(
    pytester: pytest.Pytester, counts_installed: Path
) -> None:
    lines = _usage_error(pytester, {"evidence": ["sampler", "countz"]})
    assert lines[-1] == (
        "gates.canary.judge.evidence = ['sampler', 'countz']: Value error, 'countz' is not a "
        "registered evidence source; registered: 'alertmanager', 'prometheus', 'router', "
        "'sampler', 'counts' "
        "(an evidence plug-in registers more under the entry point group "
        "'pytest_release.evidence': install it)"
    ), lines


def test_a_source_without_its_table_is_a_usage_error_showing_the_table(
    pytester: pytest.Pytester, counts_installed: Path
) -> None:
    lines = _usage_error(pytester, {"evidence": ["counts"]})
    assert lines[-1].endswith(
        "['counts']}: Value error, judge.evidence names 'counts' but judge.counts is not set: "
        "add judge.counts = { url = 'http://127.0.0.1:9100/counts' }"
    ), lines


def test_a_bad_source_table_is_a_usage_error_from_the_plugins_own_model(
    pytester: pytest.Pytester, counts_installed: Path
) -> None:
    lines = _usage_error(pytester, {"evidence": ["counts"], "counts": {"url": "127.0.0.1:9100"}})
    assert lines[-1] == (
        "gates.canary.judge.counts.url = '127.0.0.1:9100': Value error, must be an http(s) URL "
        "such as http://127.0.0.1:9100/counts, got '127.0.0.1:9100'"
    ), lines


def test_an_alerts_source_named_as_evidence_is_a_usage_error_saying_its_table_switches_it_on(
    pytester: pytest.Pytester,
) -> None:
    lines = _usage_error(pytester, {"evidence": ["sampler", "alertmanager"]})
    assert lines[-1] == (
        "gates.canary.judge.evidence = ['sampler', 'alertmanager']: Value error, "
        "'alertmanager' is not named in judge.evidence: its table judge.alertmanager switches "
        "it on (a matching alert fails the look at once)"
    ), lines

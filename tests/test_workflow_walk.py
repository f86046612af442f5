"""Walk the jobs of the committed workflow in ``needs:`` order on this machine.

Each job runs the stage action's scripts (tests/workflow_support.py emulates the runner:
environment files, the ledger artifacts between jobs, ``needs``/``if``). What runs here:

* every job of .github/workflows/release.yml, with its real pytest command and flags
  (stage, release configs, suites, --image, --approved-via, --ledger), plus one extra
  configuration layer that gives the stages which cannot run here quick gates: uat runs
  its unit and integration gates, smoke its real smoke gate against a shop started here
  (the emulated ``vars.SHOP_URL``), staging the same smoke gate (``vars.STAGING_URL``),
  build / canary-1..3 / rollback run the unit gate
  (no image build, no cluster);
* so the order of the jobs, ``needs`` against ``requires``, the ledger carried between
  jobs, the approval, the outputs, the step summary and the rollback condition are
  checked; the gates that need GitHub (ghcr.io, a cluster) are not.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workflow_support import ROOT, WORKFLOW, Context, JobRun, Runner, load_yaml

SLACK = "https://hooks.slack.com/services/T0000/B0000/walk-secret-" + uuid.uuid4().hex[:8]
QUICK = """
[stages.uat]
gates = ["unit", "integration"]
[stages.build]
gates = ["unit"]
[stages.staging]
gates = ["smoke"]
[stages.canary-1]
gates = ["unit"]
[stages.canary-2]
gates = ["unit"]
[stages.canary-3]
gates = ["unit"]
[stages.rollback]
gates = ["unit"]
"""


def _suites_conftest() -> Any:
    spec = importlib.util.spec_from_file_location("suites_conftest", ROOT / "suites/conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def production() -> Iterator[str]:
    """The shop the smoke job checks (what vars.SHOP_URL names on GitHub)."""
    suites = _suites_conftest()
    process, url = suites.start_shop()
    try:
        yield url
    finally:
        suites.stop_shop(process)


def _runner(
    tmp_path: Path, workflow: dict[str, Any], shop_url: str, staging_url: str | None = None
) -> tuple[Runner, str]:
    sha = "walk" + uuid.uuid4().hex
    quick = tmp_path / "quick.toml"
    quick.write_text(QUICK)
    context = Context(
        github={
            "repository": "Acme/Shop",
            "sha": sha,
            "actor": "release-bot",
            "run_id": "42",
            "server_url": "https://github.com",
            "workflow": "release",
        },
        secrets={"SLACK_WEBHOOK_URL": SLACK, "KUBECONFIG": "apiVersion: v1\nkind: Config\n"},
        vars={
            "SHOP_URL": shop_url,
            "STAGING_URL": shop_url if staging_url is None else staging_url,
            # The canary stages run a quick gate here: no Prometheus is asked.
            "PROMETHEUS_URL": "http://127.0.0.1:9",
        },
    )
    runner = Runner(
        workflow,
        context,
        tmp_path,
        extra_configs=(str(quick),),
        inputs={"pytest-args": "suites -p no:cacheprovider -q"},
    )
    return runner, sha


def _ledger(run: JobRun, tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "jobs" / run.name / "ledger" / "ledger.json"
    return list(json.loads(path.read_text())["runs"])


def _explain(runs: list[JobRun]) -> str:
    return "\n".join(
        f"--- {r.name}: {r.result}\n"
        + "\n".join(f"[{s.name}] {s.code}" for s in r.steps)
        + "\n"
        + r.output()[-3000:]
        for r in runs
    )


def test_jobs_in_needs_order_pass_and_carry_the_ledger(tmp_path: Path, production: str) -> None:
    runner, sha = _runner(tmp_path, load_yaml(WORKFLOW), production)
    runs = runner.walk()
    by_name = {r.name: r for r in runs}
    assert [r.name for r in runs] == [
        "uat",
        "build",
        "staging",
        "canary-1",
        "canary-2",
        "canary-3",
        "smoke",
        "rollback",
    ]
    assert [r.result for r in runs[:-1]] == ["success"] * 7, _explain(runs)
    assert by_name["rollback"].result == "skipped"  # nothing failed

    ledger = _ledger(by_name["smoke"], tmp_path)
    mine = [e for e in ledger if e["release_id"] == sha]
    assert [(e["stage"], e["outcome"]) for e in mine] == [
        (s, "passed")
        for s in ("uat", "build", "staging", "canary-1", "canary-2", "canary-3", "smoke")
    ]
    images = {e["stage"]: e["image"] for e in mine}
    assert images["canary-1"] == f"ghcr.io/acme/shop:{sha}"  # repository lower-cased
    assert images["uat"] is None
    assert images["smoke"] is None
    assert images["staging"] == f"ghcr.io/acme/shop:{sha}"
    approvals = {e["stage"]: e["approval"] for e in mine}
    assert approvals["canary-1"]["via"] == "production"
    assert approvals["canary-1"]["run"] == "https://github.com/Acme/Shop/actions/runs/42"
    assert approvals["build"] is None
    for run in runs[:-1]:
        stage_step = next(s for s in run.steps if s.name.startswith("Stage "))
        assert stage_step.outputs.get("stage_result") == "passed", run.name
        assert f"pytest-release stage `{run.name}`: passed" in run.summary
    everything = "".join(r.output() + r.summary for r in runs)
    everything += "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.xml"))
    everything += "".join(p.read_text() for p in tmp_path.rglob("ledger.json"))
    assert SLACK not in everything


def test_a_failed_smoke_stage_runs_the_rollback_job(tmp_path: Path, production: str) -> None:
    # Staging answers; production (vars.SHOP_URL) has nothing there.
    runner, sha = _runner(tmp_path, load_yaml(WORKFLOW), "http://127.0.0.1:9", production)
    runs = {r.name: r for r in runner.walk()}
    assert runs["smoke"].result == "failure", _explain(list(runs.values()))
    assert runs["rollback"].result == "success", _explain(list(runs.values()))
    ledger = [e for e in _ledger(runs["rollback"], tmp_path) if e["release_id"] == sha]
    assert [(e["stage"], e["outcome"]) for e in ledger][-2:] == [
        ("smoke", "failed"),
        ("rollback", "passed"),
    ]


def test_a_needs_mistake_fails_the_walk(tmp_path: Path, production: str) -> None:
    """canary-2 started after build only (as GitHub would, in parallel with canary-1):
    the ledger it receives lacks canary-1, so the stage refuses to start."""
    workflow = load_yaml(WORKFLOW)
    workflow["jobs"]["canary-2"]["needs"] = ["build"]
    step = next(s for s in workflow["jobs"]["canary-2"]["steps"] if s.get("uses") == "./")
    step["with"]["ledger-from"] = "build"
    runner, _ = _runner(tmp_path, workflow, production)
    runs = {r.name: r for r in runner.walk()}
    assert runs["canary-2"].result == "failure"
    assert "requires 'canary-1' (has not run)" in runs["canary-2"].output()


def test_a_missing_variable_fails_before_the_stage(tmp_path: Path) -> None:
    runner, _ = _runner(tmp_path, load_yaml(WORKFLOW), "")  # vars.SHOP_URL not set
    runner.workflow = {"env": runner.workflow["env"], "jobs": {"smoke": _without_needs("smoke")}}
    run = runner.walk()[0]
    assert run.result == "failure"
    assert [s.name for s in run.steps] == ["Check variables and secrets"]
    assert "::error title=SHOP_URL is not set::" in run.output()


def _without_needs(job: str) -> dict[str, Any]:
    data = load_yaml(WORKFLOW)["jobs"][job]
    data.pop("needs", None)
    step = next(s for s in data["steps"] if s.get("uses") == "./")
    step["with"].pop("ledger-from", None)
    return dict(data)


def test_a_failed_staging_stage_stops_the_release_before_production(tmp_path: Path) -> None:
    runner, sha = _runner(tmp_path, load_yaml(WORKFLOW), "", "http://127.0.0.1:9")
    runs = {r.name: r for r in runner.walk()}
    assert runs["staging"].result == "failure", _explain(list(runs.values()))
    assert runs["canary-1"].result == "skipped"
    # Production was never touched: the rollback job has nothing to do.
    assert runs["rollback"].result == "skipped"
    ledger = [e for e in _ledger(runs["staging"], tmp_path) if e["release_id"] == sha]
    assert [(e["stage"], e["outcome"]) for e in ledger][-1] == ("staging", "failed")

"""``python -m pytest_release webhook``: Flagger's webhook requests (real HTTP on
127.0.0.1, Flagger's payload) answered from a real ledger. Stages the webhook starts are
real pytest runs of the project (``pytest --stage=<stage> --release-id=<checksum>``); the
answers to a judge's ``insufficient`` and what ``post-rollout`` records use ledger entries
written here. Bad requests are 400/404 whose body names the value and the fix."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_release.ledger.ledger import Ledger, LedgerEntry
from tests.analysis_support import analysis_server, get_json, record_stage
from tests.analysis_support import flagger_payload as payload
from tests.analysis_support import post_json as post

PROJECT = """\
[tool.pytest-release.stages.smoke-good]
gates = ["unit"]
requires = []
[tool.pytest-release.stages.smoke-bad]
gates = ["integration"]
requires = []
[tool.pytest-release.stages.needs-good]
gates = ["unit"]
requires = ["smoke-good"]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PROJECT, encoding="utf-8")
    for folder, body in (("unit", "assert True"), ("integration", "assert 1 == 2")):
        (tmp_path / "tests" / folder).mkdir(parents=True)
        (tmp_path / "tests" / folder / f"test_{folder}.py").write_text(
            f"def test_it():\n    {body}\n", encoding="utf-8"
        )
    return tmp_path


@pytest.fixture
def webhook(root: Path) -> Iterator[str]:
    with analysis_server(root, "webhook") as url:
        yield url


def until_settled(
    url: str, body: dict[str, Any], timeout: float = 300
) -> tuple[int, dict[str, Any]]:
    """Ask again while the stage runs (as Flagger does every interval)."""
    deadline = time.monotonic() + timeout
    while True:
        status, answer = post(url, body)
        if answer.get("verdict") not in ("running", "none") or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.5)


def runs_of(root: Path, release: str) -> list[LedgerEntry]:
    return Ledger(root / ".pytest-release" / "ledger.json").for_release(release)


def test_a_stage_runs_once_for_the_checksum_and_is_answered_from_its_record(
    root: Path, webhook: str
) -> None:
    good = payload("5f7c9d8b4", stage="smoke-good")
    first_status, first = post(f"{webhook}/pre-rollout", good)
    again_status, again = post(f"{webhook}/pre-rollout", good)
    status, answer = until_settled(f"{webhook}/pre-rollout", good)
    # Running is not 2xx: Flagger does not advance on it.
    assert first_status == 503, first
    assert first["verdict"] == "running"
    assert "started pytest --stage=smoke-good --release-id=5f7c9d8b4" in first["message"]
    assert again_status in (200, 503), again
    assert (status, answer["verdict"], answer["outcome"]) == (200, "pass", "passed"), answer
    assert [(e.stage, e.outcome) for e in runs_of(root, "5f7c9d8b4")] == [("smoke-good", "passed")]
    assert post(f"{webhook}/confirm-promotion", good)[0] == 200
    # Nothing failed: the rollback webhook does not signal a rollback (not 2xx).
    no_rollback = post(f"{webhook}/rollback", good)
    assert no_rollback[0] == 409, no_rollback
    assert "no rollback" in no_rollback[1]["message"]


def test_a_failed_stage_fails_the_rollout_signals_rollback_and_blocks_promotion(
    root: Path, webhook: str
) -> None:
    bad = payload("a1b2c3d4e", stage="smoke-bad")
    status, answer = until_settled(f"{webhook}/rollout", bad)
    assert (status, answer["verdict"]) == (409, "fail"), answer
    assert answer["gates"] == {"integration": "failed"}
    # Any stage recorded for the checksum counts (smoke-bad is not a mirrored stage).
    rollback = post(f"{webhook}/rollback", payload("a1b2c3d4e"))
    assert rollback[0] == 200, rollback  # 2xx: Flagger rolls back now
    assert rollback[1]["message"].startswith("roll back: ")
    assert post(f"{webhook}/confirm-promotion", bad)[0] == 409


def test_a_run_that_records_nothing_is_an_error_with_its_output(root: Path, webhook: str) -> None:
    # 'needs-good' requires 'smoke-good', which never ran for this release: usage error.
    needs = payload("0d0e0f", stage="needs-good")
    status, answer = until_settled(f"{webhook}/rollout", needs)
    assert status == 500, answer
    assert answer["verdict"] == "error"
    assert "exited 4 without recording the stage" in answer["message"]
    assert "smoke-good" in answer["message"]


def test_insufficient_evidence_neither_advances_nor_rolls_back(root: Path) -> None:
    record_stage(root, "9a9b9c", "canary-1", "rolled-back", "insufficient")
    body = payload("9a9b9c", stage="canary-1")
    with analysis_server(root, "webhook") as url:
        default = post(f"{url}/rollout", body)
        rollback = post(f"{url}/rollback", payload("9a9b9c"))
        promotion = post(f"{url}/confirm-promotion", payload("9a9b9c"))
    with analysis_server(root, "webhook", "--insufficient-status=200") as url:
        chosen = post(f"{url}/rollout", body)
        # Flagger may advance the weight then, never promote: the promotion waits.
        chosen_promotion = post(f"{url}/confirm-promotion", payload("9a9b9c"))
    assert default[0] == 503, default
    assert default[1]["verdict"] == "insufficient"
    assert rollback[0] == 409, rollback
    assert promotion[0] == 503, promotion
    assert "stage 'canary-1' is 'insufficient'" in promotion[1]["message"]
    assert chosen[0] == 200, chosen
    assert chosen_promotion[0] == 503, chosen_promotion


def test_post_rollout_records_what_flagger_did(root: Path, webhook: str) -> None:
    record_stage(root, "77aa", "canary-1", "passed", "pass")
    record_stage(root, "77aa", "canary-2", "passed", "pass")
    record_stage(root, "88bb", "canary-1", "failed", "fail")
    promoted = post(f"{webhook}/post-rollout", payload("77aa", phase="Succeeded"))
    rolled_back = post(f"{webhook}/post-rollout", payload("88bb", phase="Failed"))
    nothing = post(f"{webhook}/post-rollout", payload("99cc", phase="Failed"))
    assert promoted[0] == 200, promoted
    assert promoted[1]["recorded"] == ["canary-1", "canary-2"]
    controllers = [e.details.get("controller") for e in runs_of(root, "77aa")]
    assert [c["action"] for c in controllers if c] == ["promoted", "promoted"]
    assert controllers[0] is not None
    assert controllers[0]["canary"] == "shop/shop"
    assert rolled_back[0] == 200, rolled_back
    assert runs_of(root, "88bb")[0].details["controller"]["action"] == "rolled-back"
    assert nothing[0] == 404, nothing
    assert "no run of any stage for release '99cc'" in nothing[1]["message"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/rollout", b"{not json", 400, "the body is not JSON"),
        ("/rollout", [1, 2], 400, "the body must be a JSON object, got [1, 2]"),
        ("/rollout", {"name": "shop", "namespace": "shop", "phase": "Progressing"}, 400,
         "field 'checksum' must be a non-empty string, got null"),
        ("/rollout", payload("ab", phase="Sleeping"), 400, "field 'phase' is 'Sleeping'"),
        ("/rollout", payload("ab/../x", stage="smoke-good"), 400, "field 'checksum' is"),
        ("/rollout", payload("ab", stage="canary-9"), 400,
         "metadata.stage is 'canary-9', which the release configuration does not define"),
        ("/rollout", {**payload("ab"), "metadata": {"stage": 3}}, 400,
         "field 'metadata' must map strings to strings"),
        ("/pre-rollout", payload("ab"), 400, "the pre-rollout webhook names no stage"),
        ("/post-rollout", payload("ab"), 400, "post-rollout with phase 'Progressing'"),
        ("/judge", payload("ab"), 404, "unknown webhook path '/judge'"),
    ],
)  # fmt: skip
def test_a_bad_request_is_refused_with_what_was_wrong(
    webhook: str, path: str, body: Any, status: int, message: str
) -> None:
    answer = post(f"{webhook}{path}", body)
    assert answer[0] == status, answer
    assert message in answer[1]["error"], answer


def test_healthz_and_a_bad_status_option(root: Path, webhook: str) -> None:
    assert get_json(f"{webhook}/healthz") == {"status": "ok"}
    with (
        pytest.raises(AssertionError, match="201 is neither 200"),
        analysis_server(root, "webhook", "--running-status=201"),
    ):
        pass

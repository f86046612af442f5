"""Tests of the running shop container (gate: docker).

The docker gate builds the image once, starts one container on the host network and
gives these tests ``release_base_url`` and ``release_container_logs``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable


def test_container_serves_the_api(release_base_url: str) -> None:
    with urllib.request.urlopen(f"{release_base_url}/api/products", timeout=10) as response:
        assert response.status == 200
        assert len(json.load(response)["products"]) == 3


def test_logs_are_structured_json(
    release_base_url: str, release_container_logs: Callable[[], str]
) -> None:
    urllib.request.urlopen(f"{release_base_url}/version", timeout=10).close()

    def version_logged(records: list[dict[str, object]]) -> bool:
        return any(r.get("path") == "/version" and r.get("status") == 200 for r in records)

    # The access line is written after the response and reaches Docker's log a little
    # later: wait for it (a loaded machine can take seconds), then check every line.
    deadline = time.monotonic() + 30
    while True:
        records = [json.loads(line) for line in release_container_logs().splitlines() if line]
        if version_logged(records) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    starts = [r for r in records if r.get("event") == "start"]
    assert starts, records[:5]
    assert starts[0]["env"] == "uat"
    assert version_logged(records)

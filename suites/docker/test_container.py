"""Tests of the running shop container (gate: docker).

The docker gate builds the image once, starts one container on the host network and
gives these tests ``release_base_url`` and ``release_container_logs``.
"""

from __future__ import annotations

import json
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
    records = [json.loads(line) for line in release_container_logs().splitlines() if line]
    assert records[0]["event"] == "start"
    assert records[0]["env"] == "uat"
    assert any(r.get("path") == "/version" and r.get("status") == 200 for r in records)

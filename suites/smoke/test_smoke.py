"""Smoke checks against the deployed service (gate: smoke).

Run in the staging stage (``SHOP_URL``: staging's router) and after canary-3 with
``SHOP_URL`` pointing at production (the router); locally they start their own shop.
"""

from __future__ import annotations

import json
import urllib.request


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_health_is_ok(shop_url: str) -> None:
    status, body = get(f"{shop_url}/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


def test_catalog_is_served(shop_url: str) -> None:
    status, body = get(f"{shop_url}/api/products")
    assert status == 200
    assert {p["id"] for p in json.loads(body)["products"]} >= {"tea", "mug"}


def test_page_renders(shop_url: str) -> None:
    status, body = get(f"{shop_url}/")
    assert status == 200
    assert b'id="checkout"' in body


def test_repeated_requests_all_succeed(shop_url: str) -> None:
    failed = []
    for _ in range(20):
        try:
            status, _body = get(f"{shop_url}/api/products")
        except OSError as exc:  # urllib raises HTTPError (an OSError) for 5xx
            failed.append(str(exc))
            continue
        if status != 200:
            failed.append(str(status))
    assert failed == [], f"{len(failed)} of 20 requests failed: {failed[:3]}"

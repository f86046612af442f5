"""The shop's HTTP API against a real process (gate: integration)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from conftest import start_shop, stop_shop


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_and_version(shop_url: str) -> None:
    assert call(f"{shop_url}/health") == (200, {"status": "ok", "version": "test"})
    assert call(f"{shop_url}/version") == (200, {"version": "test"})


def test_order_round_trip(shop_url: str) -> None:
    status, order = call(
        f"{shop_url}/api/orders", "POST", {"items": [{"product_id": "mug", "quantity": 2}]}
    )
    assert status == 201
    assert order["total"] == "24.00"
    assert call(f"{shop_url}/api/orders/{order['id']}") == (200, order)
    _, mug = call(f"{shop_url}/api/products/mug")
    assert mug["stock"] <= 18


def test_bad_order_is_a_400_with_the_reason(shop_url: str) -> None:
    status, body = call(f"{shop_url}/api/orders", "POST", {"items": [{"product_id": "x"}]})
    assert status == 400
    assert "unknown product 'x'" in body["error"]


@pytest.mark.parametrize("path", ["/api/orders/999999", "/api/products/none", "/nowhere"])
def test_unknown_resources_are_404(shop_url: str, path: str) -> None:
    assert call(f"{shop_url}{path}")[0] == 404


def test_fault_knobs_make_a_bad_release() -> None:
    process, url = start_shop(SHOP_ERROR_RATE="0.5", SHOP_FAIL_HEALTH="1")
    try:
        statuses = [call(f"{url}/api/products")[0] for _ in range(10)]
        assert statuses.count(500) == 5
        assert call(f"{url}/health")[0] == 503
    finally:
        stop_shop(process)

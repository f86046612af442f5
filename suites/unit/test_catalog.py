"""Unit tests of the shop's domain logic (gate: unit)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from shop.catalog import MAX_QUANTITY, Catalog, OrderError
from shop.faults import Faults, KnobError


def test_order_total_sums_lines_and_takes_stock() -> None:
    catalog = Catalog()
    order = catalog.place_order(
        [{"product_id": "tea", "quantity": 2}, {"product_id": "mug", "quantity": 1}]
    )
    assert order.total == Decimal("21.00")
    assert catalog.products["tea"].stock == 98
    assert catalog.orders[order.id] is order


def test_repeated_product_lines_are_merged() -> None:
    order = Catalog().place_order([{"product_id": "tea"}, {"product_id": "tea", "quantity": 2}])
    assert [(line.product_id, line.quantity) for line in order.lines] == [("tea", 3)]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "non-empty list"),
        ([{"product_id": "nope"}], "unknown product 'nope'; products: kettle, mug, tea"),
        ([{"product_id": "tea", "quantity": 0}], "quantity must be a positive integer"),
        ([{"product_id": "tea", "quantity": True}], "quantity must be a positive integer"),
        ([{"product_id": "kettle", "quantity": 6}], "only 5 of 'kettle' in stock, 6 requested"),
        ([{"product_id": "tea", "quantity": MAX_QUANTITY + 1}], f"at most {MAX_QUANTITY}"),
        (["tea"], "items[0] must be an object"),
    ],
)
def test_invalid_orders_are_refused_with_a_reason(items: object, message: str) -> None:
    catalog = Catalog()
    with pytest.raises(OrderError, match=message.replace("[", r"\[")):
        catalog.place_order(items)
    assert catalog.products["kettle"].stock == 5, "a refused order must not take stock"


def test_error_knob_is_deterministic() -> None:
    faults = Faults(error_rate=0.25)
    outcomes = [faults.on_request()[0] for _ in range(100)]
    assert sum(outcomes) == 25


def test_crash_knob_fires_at_the_nth_request() -> None:
    faults = Faults(crash_after=3)
    assert [faults.on_request()[1] for _ in range(3)] == [False, False, True]


def test_bad_knob_values_are_refused() -> None:
    with pytest.raises(KnobError, match="SHOP_ERROR_RATE='2' must be between 0 and 1"):
        Faults.from_env({"SHOP_ERROR_RATE": "2"})
    with pytest.raises(KnobError, match="SHOP_LATENCY_MS='slow' is not a number"):
        Faults.from_env({"SHOP_LATENCY_MS": "slow"})

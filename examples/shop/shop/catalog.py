"""Products and orders: the shop's domain logic (pure, unit-tested in suites/unit)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import Decimal


class OrderError(ValueError):
    """An order that cannot be placed; the message is shown to the client."""


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    price: Decimal
    stock: int

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "price": str(self.price), "stock": self.stock}


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Order:
    id: int
    lines: tuple[OrderLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal("0"))

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "items": [
                {"product_id": ln.product_id, "quantity": ln.quantity, "total": str(ln.total)}
                for ln in self.lines
            ],
            "total": str(self.total),
        }


DEFAULT_PRODUCTS = (
    Product("tea", "Green tea", Decimal("4.50"), 100),
    Product("mug", "Enamel mug", Decimal("12.00"), 20),
    Product("kettle", "Stovetop kettle", Decimal("39.90"), 5),
)

MAX_QUANTITY = 50


@dataclass
class Catalog:
    """Thread-safe products with stock, and the orders placed against them."""

    products: dict[str, Product] = field(
        default_factory=lambda: {p.id: p for p in DEFAULT_PRODUCTS}
    )
    orders: dict[int, Order] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def list_products(self) -> list[Product]:
        return sorted(self.products.values(), key=lambda p: p.id)

    def place_order(self, items: object) -> Order:
        """Validate ``items`` (``[{"product_id": str, "quantity": int}, ...]``), take
        the stock and record the order; all or nothing."""
        requested = _parse_items(items)
        with self._lock:
            lines = []
            for product_id, quantity in requested.items():
                product = self.products.get(product_id)
                if product is None:
                    known = ", ".join(sorted(self.products))
                    raise OrderError(f"unknown product {product_id!r}; products: {known}")
                if quantity > product.stock:
                    raise OrderError(
                        f"only {product.stock} of {product_id!r} in stock, {quantity} requested"
                    )
                lines.append(OrderLine(product_id, quantity, product.price))
            for line in lines:
                product = self.products[line.product_id]
                self.products[line.product_id] = Product(
                    product.id, product.name, product.price, product.stock - line.quantity
                )
            order = Order(next(self._ids), tuple(lines))
            self.orders[order.id] = order
            return order


def _parse_items(items: object) -> dict[str, int]:
    if not isinstance(items, list) or not items:
        raise OrderError("'items' must be a non-empty list of {product_id, quantity}")
    merged: dict[str, int] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise OrderError(f"items[{position}] must be an object, got {item!r}")
        product_id = item.get("product_id")
        quantity = item.get("quantity", 1)
        if not isinstance(product_id, str) or not product_id:
            raise OrderError(f"items[{position}].product_id must be a string")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise OrderError(f"items[{position}].quantity must be a positive integer")
        merged[product_id] = merged.get(product_id, 0) + quantity
        if merged[product_id] > MAX_QUANTITY:
            raise OrderError(f"at most {MAX_QUANTITY} of {product_id!r} per order")
    return merged

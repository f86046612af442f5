"""Load profile of the shop (examples/shop) for the perf gate (``kind = "perf"``).

Read-only traffic shaped like the shop's real use: mostly the product list, then product
pages, the HTML page and the health check.  Orders are left out on purpose: the shop's
stock is finite, so a load test that orders would soon measure "out of stock" answers.
Each request has a literal URL or ``name=``, so the gate knows every endpoint (and makes
its item) before Locust runs.
"""

from __future__ import annotations

import random

from locust import HttpUser, between, task

PRODUCTS = ("tea", "mug", "kettle")


class Shopper(HttpUser):
    wait_time = between(0.01, 0.05)

    @task(5)
    def products(self) -> None:
        self.client.get("/api/products")

    @task(3)
    def product(self) -> None:
        self.client.get(f"/api/products/{random.choice(PRODUCTS)}", name="/api/products/[id]")

    @task(1)
    def page(self) -> None:
        self.client.get("/")

    @task(1)
    def health(self) -> None:
        self.client.get("/health")

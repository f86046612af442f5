"""The shop page in a real browser (gate: e2e, pytest-playwright).

``page.goto("/")`` resolves against the stage's base URL (the e2e gate's ``base_url``
or ``--base-url``).
"""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_add_to_cart_and_place_order(page: Page) -> None:
    page.goto("/")
    add_tea = page.locator("button[data-product=tea]")
    expect(add_tea).to_be_visible()
    add_tea.click()
    add_tea.click()
    expect(page.locator("#cart-count")).to_have_text("2")
    expect(page.locator("#cart-total")).to_have_text("9.00")
    page.locator("#checkout").click()
    expect(page.locator("#message")).to_contain_text("placed: 9.00")
    expect(page.locator("#cart-count")).to_have_text("0")


def test_checkout_is_disabled_for_an_empty_cart(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#checkout")).to_be_disabled()

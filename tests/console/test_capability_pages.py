"""The capability pages in a real browser (Debian's Chromium through Playwright), asserting on the
DOM: the catalogue (the worker's own, another user's public priced one, with price and rating),
a capability's profile, and an invoke from its page that orders it, opens its task and shows the
order in the wallet. Every wait is on a DOM condition, never on time."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from tests.api.conftest import ClientMaker
from tests.console.conftest import signed_in_page
from tests.fakes import Reply, ScriptedModelServer

Client = TestClient[Any, Any]
KEYS = "alice:tok-alice,bob:tok-bob"
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}
OCR = {
    "id": "invoice-ocr",
    "name": "Invoice OCR",
    "description": "Reads an invoice.",
    "category": "documents",
    "system_prompt": "Bob's private instructions.",
    "visibility": "public",
    "price": 25,
    "allowed_tools": [],
}


@pytest.fixture
async def secured(make_client: ClientMaker) -> Client:
    client = await make_client(api_keys=KEYS)
    created = await client.post("/api/v1/capabilities", json=OCR, headers=BOB)
    assert created.status == 201, await created.text()
    return client


async def settled(client: Client, order_id: str) -> str:
    """The order's status once it is settled: that follows its task's end, by a moment."""
    for _ in range(300):
        response = await client.get(f"/api/v1/transactions/{order_id}", headers=ALICE)
        assert response.status == 200, await response.text()
        status = (await response.json())["data"]["status"]
        if status not in ("pending", "running"):
            return str(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never settled")


async def test_the_catalogue_shows_owner_price_and_rating(browser: Browser, secured: Client) -> None:
    page = await signed_in_page(browser, secured, "/console/capabilities")

    ocr = page.locator("#capability-rows tr[data-capability-id=invoice-ocr] td")
    await expect(ocr.nth(0)).to_contain_text("Invoice OCR")
    await expect(ocr.nth(1)).to_have_text("documents")
    await expect(ocr.nth(2)).to_have_text("bob")
    await expect(ocr.nth(3)).to_have_text("public")
    await expect(ocr.nth(4)).to_have_text("25.00")
    await expect(ocr.nth(5)).to_have_text("0.50")  # bob's node, not rated yet
    general = page.locator("#capability-rows tr[data-capability-id=general] td")
    await expect(general.nth(2)).to_have_text("this worker")
    await expect(general.nth(4)).to_have_text("free")
    await page.get_by_label("Category").fill("documents")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#capability-rows tr")).to_have_count(1)
    await expect(page.locator("#list-state")).to_have_text("1 capability")

    await page.get_by_role("link", name="Invoice OCR").click()
    await expect(page).to_have_url(re.compile(r"/console/capabilities/invoice-ocr$"))
    await expect(page.locator("#capability-name")).to_have_text("Invoice OCR")
    await expect(page.locator("#capability-fields")).to_contain_text("25.00 credits an order")
    await expect(page.locator("#capability-prompt")).to_be_hidden()  # not alice's: no system prompt
    await expect(page.locator("#invoke-price")).to_contain_text("25.00 credits are held from your wallet")


async def test_the_catalogue_pages_through_25_at_a_time(browser: Browser, secured: Client) -> None:
    for n in range(25):
        extra = {**OCR, "id": f"extra-{n:02}", "name": f"Extra {n:02}", "category": "extra"}
        created = await secured.post("/api/v1/capabilities", json=extra, headers=BOB)
        assert created.status == 201, await created.text()
    listed = await secured.get("/api/v1/capabilities?page_size=1", headers=ALICE)
    total = (await listed.json())["data"]["total"]  # the 25, invoice-ocr and the worker's own
    assert 25 < total <= 50
    page = await signed_in_page(browser, secured, "/console/capabilities")
    rows = page.locator("#capability-rows tr")
    previous = page.get_by_role("button", name="Previous")
    following = page.get_by_role("button", name="Next")

    await expect(page.locator("#list-state")).to_have_text(f"{total} capabilities")
    await expect(rows).to_have_count(25)
    await expect(page.locator("#page-label")).to_have_text("Page 1")
    await expect(previous).to_be_disabled()
    first = await rows.evaluate_all("rows => rows.map((row) => row.dataset.capabilityId)")
    await following.click()
    await expect(page.locator("#page-label")).to_have_text("Page 2")
    await expect(rows).to_have_count(total - 25)
    await expect(following).to_be_disabled()
    await expect(previous).to_be_enabled()
    second = await rows.evaluate_all("rows => rows.map((row) => row.dataset.capabilityId)")
    assert len(set(first) | set(second)) == total

    await page.get_by_label("Category").fill("extra")  # a filter starts again at page 1
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#page-label")).to_have_text("Page 1")
    await expect(page.locator("#list-state")).to_have_text("25 capabilities")
    await expect(following).to_be_disabled()
    await expect(previous).to_be_disabled()


async def test_the_owner_sees_the_system_prompt(browser: Browser, secured: Client) -> None:
    page = await signed_in_page(browser, secured, "/console/capabilities/invoice-ocr", key="tok-bob")

    await expect(page.locator("#capability-prompt-text")).to_have_text("Bob's private instructions.")
    await expect(page.locator("#capability-fields")).to_contain_text("you")
    await expect(page.locator("#invoke-price")).to_be_hidden()  # the owner runs it for free


async def test_invoking_orders_it_opens_the_task_and_the_wallet_shows_the_order(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("Total: 118.00"))
    page = await signed_in_page(browser, secured, "/console/capabilities/invoice-ocr")
    await expect(page.get_by_role("button", name="Run")).to_be_enabled()

    await page.get_by_role("textbox", name="Message").fill("Read invoice 17.")
    await page.get_by_role("button", name="Run").click()

    await expect(page).to_have_url(re.compile(r"/console/tasks/[0-9a-f-]+$"))
    task_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#task-status")).to_have_text("completed")
    assert await settled(secured, task_id) == "completed"
    assert model_server.requests[0]["messages"][-1]["content"] == "Read invoice 17."
    await page.goto(str(secured.make_url("/console/wallet")))
    row = page.locator(f"#order-rows tr[data-order-id='{task_id}'] td")
    await expect(row.nth(1)).to_have_text("invoice-ocr")
    await expect(row.nth(2)).to_have_text("bought")
    await expect(row.nth(3)).to_have_text("bob")
    await expect(row.nth(4)).to_have_text("25.00")
    await expect(row.nth(5)).to_have_text("completed")
    await expect(page.locator("#wallet-balance")).to_have_text("975.00")


async def test_a_capability_that_needs_a_message_is_not_run_without_one(
    browser: Browser, secured: Client
) -> None:
    page = await signed_in_page(browser, secured, "/console/capabilities/general")
    await expect(page.locator("#invoke-hint")).to_have_text("Required: this capability has no default input.")

    await page.get_by_role("button", name="Run").click()

    await expect(page.locator("#invoke .form-error")).to_have_text("Enter a message.")
    listed = await (await secured.get("/api/v1/tasks", headers=ALICE)).json()
    assert listed["tasks"] == []


async def test_page_paths_with_overlong_ids_are_404(secured: Client) -> None:
    await secured.post("/console/signin", data={"api_key": "tok-alice"}, allow_redirects=False)
    for path in ["/console/capabilities/" + "c" * 65, "/console/workspaces/" + "w" * 201]:
        response = await secured.get(path)
        assert response.status == 404, path
    page = await secured.get("/console/capabilities/invoice-ocr")
    assert page.status == 200
    assert 'data-capability-id="invoice-ocr"' in await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]

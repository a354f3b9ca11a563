"""The agent platform's pages in a real browser (Debian's Chromium through Playwright), asserting on
the DOM: the wallet's balance, escrow and ledger entries; marketplace tasks by status with their
escrow (held, paid to the acceptor, refunded), accepted, delivered and canceled from the page;
agents with their trust after a rating; and, without a key,
a page that says to sign in instead of failing. Every wait is on a DOM condition, never on time."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from tests.api.conftest import ClientMaker
from tests.console.conftest import WAIT, signed_in_page

Client = TestClient[Any, Any]
KEYS = "alice:tok-alice,bob:tok-bob"
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}


@pytest.fixture
async def market(make_client: ClientMaker) -> Client:
    """Alice published a task of 120 that bob did and she rated 5.0 on time, and one of 30 still open."""
    client = await make_client(api_keys=KEYS)
    done = await call(
        client, "POST", "/v1/tasks", ALICE, {"title": "Count words", "description": "In a.txt", "budget": 120}
    )
    await call(client, "PUT", f"/v1/tasks/{done['task_id']}/accept", BOB)
    await call(
        client, "PUT", f"/v1/tasks/{done['task_id']}/complete", BOB, {"deliverables": {"report": "42"}}
    )
    rating = {"agent_id": "bob", "task_id": done["task_id"], "quality_score": 5.0, "on_time": True}
    await call(client, "POST", "/v1/trust/rate", ALICE, rating)
    await call(
        client,
        "POST",
        "/v1/tasks",
        ALICE,
        {
            "title": "Summarise the report",
            "description": "One paragraph",
            "budget": 30,
            "required_capabilities": ["writing"],
        },
    )
    return client


async def call(client: Client, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status in (200, 201), await response.text()
    return (await response.json())["data"]


async def test_the_wallet_shows_balance_escrow_and_the_ledger(browser: Browser, market: Client) -> None:
    page = await signed_in_page(browser, market, "/console/wallet")

    await expect(page.locator("#wallet-balance")).to_have_text("850.00")  # 1000 - 120 paid - 30 held
    await expect(page.locator("#wallet-frozen")).to_have_text("30.00")
    await expect(page.locator("#wallet-spent")).to_have_text("120.00")
    await expect(page.locator("#wallet-earned")).to_have_text("0.00")
    entries = page.locator("#ledger-rows tr")
    await expect(entries).to_have_count(4)  # grant, hold 120, release 120, hold 30: newest first
    types = [await row.get_attribute("data-type") for row in await entries.all()]
    assert types == ["escrow_hold", "escrow_release", "escrow_hold", "grant"]
    grant = page.locator("#ledger-rows tr[data-type=grant]")
    await expect(grant.locator("td").nth(1)).to_have_text("credits granted")
    await expect(grant.locator("td").nth(2)).to_have_text("+1000.00")
    await expect(grant.locator("td").nth(4)).to_have_text("1000.00")
    paid = page.locator("#ledger-rows tr[data-type=escrow_release]")
    await expect(paid.locator("td").nth(2)).to_have_text("-120.00")
    await expect(page.locator("#ledger-state")).to_have_text("4 entries")

    bob = await signed_in_page(browser, market, "/console/wallet", key="tok-bob")
    await expect(bob.locator("#wallet-balance")).to_have_text("1120.00")
    await expect(bob.locator("#wallet-earned")).to_have_text("120.00")
    await expect(bob.locator("#ledger-rows tr[data-type=escrow_release] td").nth(2)).to_have_text("+120.00")


async def test_marketplace_tasks_by_status_with_their_escrow(browser: Browser, market: Client) -> None:
    page = await signed_in_page(browser, market, "/console/market", key="tok-bob")

    rows = page.locator("#market-rows tr")
    await expect(rows).to_have_count(1)  # open ones first
    await expect(rows.first.locator("td").nth(0)).to_contain_text("Summarise the report")
    await expect(rows.first.locator("td.escrow")).to_have_text("30.00 held")
    await expect(rows.first.locator("td").nth(5)).to_have_text("writing")
    await page.get_by_text("Done", exact=True).click()
    await expect(page.locator("#market-rows tr[data-status=done] td.escrow")).to_have_text(
        "120.00 paid to bob"
    )
    await expect(rows).to_have_count(1)
    await page.get_by_text("All", exact=True).click()
    await expect(rows).to_have_count(2)
    await page.get_by_label("Capability").fill("writing")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(page.locator("#list-state")).to_have_text("1 task")


async def test_agents_with_their_trust(browser: Browser, market: Client) -> None:
    page = await signed_in_page(browser, market, "/console/agents")

    bob = page.locator("#agent-rows tr[data-agent-id=bob]")
    await expect(bob.locator(".trust")).to_have_attribute("data-trust", "0.63")  # (1.5 + 1) / 4 = 0.625
    await expect(bob.locator("td").nth(4)).to_have_text("1")  # ratings
    await expect(bob.locator("td").nth(5)).to_have_text("1")  # tasks done
    # Most trusted first: bob, then the unrated nodes at the prior 0.5.
    await expect(page.locator("#agent-rows tr").first).to_have_attribute("data-agent-id", "bob")
    await expect(page.locator("#agent-rows tr[data-agent-id=alice] .trust")).to_have_attribute(
        "data-trust", "0.50"
    )
    await expect(page.locator("#agent-rows tr[data-agent-id=alice] td").first).to_contain_text("(you)")
    await expect(page.locator("#agent-rows tr[data-agent-id=general] td").nth(1)).to_have_text(
        "this worker's agent"
    )
    await page.get_by_label("Trust at least").fill("0.6")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#agent-rows tr")).to_have_count(1)
    await expect(page.locator("#list-state")).to_have_text("1 agent")


async def test_without_a_key_the_platform_pages_say_to_sign_in(
    browser: Browser, make_client: ClientMaker
) -> None:
    client = await make_client()  # anonymous loopback mode: the console works, /v1 needs a key
    page = await browser.new_page()
    page.set_default_timeout(WAIT)

    for path, where in [
        ("/console/wallet", "#wallet-error"),
        ("/console/market", "#list-state"),
        ("/console/agents", "#list-state"),
    ]:
        await page.goto(str(client.make_url(path)))
        await expect(page.locator(where)).to_contain_text("The agent platform needs an API key")
        await expect(page.locator(where).get_by_role("link", name="sign in")).to_have_attribute(
            "href", f"/console/signin?next={path.replace('/', '%2F')}"
        )
        assert page.url.endswith(path)  # no redirect loop


async def test_accept_and_deliver_a_task_and_cancel_ones_own(browser: Browser, market: Client) -> None:
    page = await signed_in_page(browser, market, "/console/market", key="tok-bob")
    row = page.locator("#market-rows tr").filter(has_text="Summarise the report")
    await expect(row.get_by_role("button", name="Cancel")).to_have_count(0)  # alice's, not bob's

    await row.get_by_role("button", name="Accept “Summarise the report”").click()
    await expect(page.locator("#toast")).to_have_text("Accepted “Summarise the report”")
    await expect(page.locator("#market-rows tr")).to_have_count(0)  # no longer open
    await page.get_by_text("Accepted", exact=True).click()
    accepted = page.locator("#market-rows tr[data-status=progress]")
    await expect(accepted.locator("td").nth(4)).to_have_text("bob")
    await accepted.get_by_text("Deliver a report").click()
    await accepted.get_by_label("Report").fill("Revenue grew 4%.")
    await accepted.get_by_role("button", name="Deliver").click()
    await expect(page.locator("#toast")).to_have_text("Delivered “Summarise the report”: 30.00 paid to you")
    await page.get_by_text("Done", exact=True).click()
    done = page.locator("#market-rows tr[data-status=done]")
    await expect(done).to_have_count(2)
    delivered = done.filter(has_text="Summarise the report").locator("td.escrow")
    await expect(delivered).to_have_text("30.00 paid to bob")
    wallet = await call(market, "GET", "/v1/wallet", BOB)
    assert wallet["balance"] == 1150

    await call(market, "POST", "/v1/tasks", ALICE, {"title": "Never mind", "description": "x", "budget": 40})
    alice = await signed_in_page(browser, market, "/console/market")
    await alice.get_by_role("button", name="Cancel “Never mind”").click()
    await expect(alice.locator("#toast")).to_have_text("Canceled “Never mind”: 40.00 refunded")
    await alice.get_by_text("Canceled", exact=True).click()
    await expect(alice.locator("#market-rows tr[data-status=canceled] td.escrow")).to_have_text(
        "40.00 refunded"
    )
    assert (await call(market, "GET", "/v1/wallet", ALICE))["frozen"] == 0

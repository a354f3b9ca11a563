"""The workspace, capability and platform pages fit a 1280 px desktop and a 390 px phone: filled
with data (nested files with long names, a conversation with a tool call, a priced capability,
tasks, ratings, ledger entries and an order), no page scrolls sideways, and every control the page
shows is reachable. With ``AGENT_CONSOLE_SCREENSHOTS=<dir>`` the test also saves each page as
``<dir>/<name>.png`` (docs/console/ holds the ones docs/console.md shows)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from tests.api.conftest import ClientMaker
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

Client = TestClient[Any, Any]
KEYS = "alice:tok-alice,bob:tok-bob"
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}
WAIT = 60_000  # ms
SCREENSHOTS = os.environ.get("AGENT_CONSOLE_SCREENSHOTS")
LONG_NAME = "quarterly-revenue-by-region-and-product-line-final-v2-reviewed.csv"
COUNT_ROWS = (
    f"import csv\nrows = list(csv.reader(open('/workspace/user_upload/2024/q1/{LONG_NAME}')))\n"
    "print(len(rows), 'rows;', 'a very long line of output ' * 8)"
)


async def call(client: Client, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status in (200, 201, 202), await response.text()
    return await response.json()


async def finished(client: Client, task_id: str) -> None:
    offset = 0
    for _ in range(120):
        data = (await call(client, "GET", f"/api/v1/tasks/{task_id}?from={offset}&wait=5", ALICE))["data"]
        if data["status"] not in ("pending", "running"):
            assert data["status"] == "completed", data
            return
        offset = data["next_offset"]
    raise AssertionError(f"task {task_id} never finished")


@pytest.fixture
async def filled(make_client: ClientMaker, model_server: ScriptedModelServer) -> tuple[Client, str]:
    """A worker with something on every page; returns the client and alice's conversation id."""
    client = await make_client(api_keys=KEYS)
    await call(client, "POST", "/api/v1/workspaces", ALICE, {"workspace_id": "reports"})
    for path, name in [("", "notes.txt"), ("2024/q1", LONG_NAME), ("2024/q2", "summary.md")]:
        form = {"path": path, "file": (b"a,b\n1,2\n" * 40, name)} if path else {"file": (b"hello\n", name)}
        response = await client.post("/api/v1/files/upload", data=_form(form), headers=ALICE)
        assert response.status == 200, await response.text()
    model_server.extend(
        [
            ToolCalls(
                [Call("execute_python", {"code": COUNT_ROWS})],
                content="I will count the rows of the quarterly file.",
            ),
            Reply("The file has 80 rows, the header included."),
            Reply("Invoice total: 118.00 EUR."),
        ]
    )
    started = await call(
        client, "POST", "/api/v1/messages", ALICE, {"message": "How many rows has the Q1 file?"}
    )
    await finished(client, started["task_id"])
    capability = {
        "id": "invoice-ocr",
        "name": "Invoice OCR",
        "description": "Reads the newest invoice in user_upload/ and reports its total.",
        "category": "documents",
        "visibility": "public",
        "price": 25,
        "allowed_tools": [],
        "default_input": "Read the newest invoice.",
    }
    await call(client, "POST", "/api/v1/capabilities", BOB, capability)
    order = await call(client, "POST", "/api/v1/capabilities/invoice-ocr/invoke", ALICE, {})
    await finished(client, order["data"]["task_id"])
    task = {"title": "Count the words of a.txt", "description": "Every word, by frequency.", "budget": 120}
    done = (await call(client, "POST", "/v1/tasks", ALICE, task))["data"]["task_id"]
    await call(client, "PUT", f"/v1/tasks/{done}/accept", BOB)
    await call(client, "PUT", f"/v1/tasks/{done}/complete", BOB, {"deliverables": {"report": "a: 3"}})
    rating = {"agent_id": "bob", "task_id": done, "quality_score": 4.5, "on_time": True}
    await call(client, "POST", "/v1/trust/rate", ALICE, rating)
    open_task = {
        "title": "Summarise the quarterly report in one paragraph for the board",
        "description": "Plain English, at most 120 words.",
        "budget": 30.5,
        "required_capabilities": ["writing", "finance"],
        "deadline": "2099-01-31T12:00:00",
    }
    await call(client, "POST", "/v1/tasks", ALICE, open_task)
    return client, started["conversation_id"]


def _form(fields: dict[str, Any]) -> FormData:
    form = FormData(quote_fields=False)
    for name, value in fields.items():
        if isinstance(value, tuple):
            form.add_field(name, value[0], filename=value[1])
        else:
            form.add_field(name, value)
    return form


PAGES = [
    # (screenshot name, path, selectors present once all of the page's data is in)
    ("workspaces", "/console/workspaces", ["#workspace-rows tr[data-workspace-id=reports]"]),
    ("workspace", "/console/workspaces/default", ["#conversation-list li", "#file-rows tr[data-type=file]"]),
    (
        "conversation",
        "/console/workspaces/default/conversations/{conversation}",
        ["#history li[data-role=tool]"],
    ),
    ("capabilities", "/console/capabilities", ["#capability-rows tr[data-capability-id=invoice-ocr]"]),
    (
        "capability",
        "/console/capabilities/invoice-ocr",
        ["#capability-fields dt", "#invoke-workspace option[value=reports]"],
    ),
    ("market", "/console/market", ["#market-rows tr"]),
    ("agents", "/console/agents", ["#agent-rows tr[data-agent-id=bob]"]),
    ("wallet", "/console/wallet", ["#order-rows tr", "#ledger-rows tr[data-type=grant]"]),
]

PHONE_SCREENSHOTS = {"workspace", "market", "wallet"}  # the docs show these at phone width too


async def sign_in(page: Page, client: Client) -> None:
    await page.goto(str(client.make_url("/console/signin")))
    await page.get_by_label("API key").fill("tok-alice")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/console$"))


@pytest.mark.parametrize("width", [1280, 390])
async def test_pages_fit_desktop_and_phone_widths(
    browser: Browser, filled: tuple[Client, str], width: int
) -> None:
    client, conversation = filled
    page = await browser.new_page(viewport={"width": width, "height": 900 if width > 600 else 844})
    page.set_default_timeout(WAIT)
    await sign_in(page, client)

    for name, path, selectors in PAGES:
        await page.goto(str(client.make_url(path.format(conversation=conversation))))
        for selector in selectors:
            await expect(page.locator(selector).first).to_be_attached()
        if SCREENSHOTS and (width > 600 or name in PHONE_SCREENSHOTS):
            suffix = "" if width > 600 else "-phone"
            await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}{suffix}.png"), full_page=width > 600)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at {width} px"
        offscreen = await page.evaluate(
            """() => [...document.querySelectorAll('main button, main a, main input, main select, main textarea')]
                 .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > window.innerWidth + 1)
                 .map((e) => e.id || e.textContent.trim() || e.name)"""
        )
        assert offscreen == [], f"{path}: controls past the right edge at {width} px: {offscreen}"

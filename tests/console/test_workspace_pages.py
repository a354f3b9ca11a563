"""The workspace pages in a real browser (Debian's Chromium through Playwright), asserting on the
DOM: creating a workspace, uploading a file through the page and downloading it back (the same
bytes), a conversation's history (message, tool call, tool result, answer), a follow-up from it,
and another user's workspace refused. Every wait is on a DOM condition, never on time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from tests.api.conftest import ClientMaker
from tests.console.conftest import signed_in_page
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

Client = TestClient[Any, Any]
KEYS = "alice:tok-alice,bob:tok-bob"
ALICE = {"Authorization": "Bearer tok-alice"}
# Not valid UTF-8, with a NUL and a CRLF: a download that re-encoded or trimmed it would differ.
CONTENT = "naïve,数据\r\n1,2\n".encode() + bytes(range(256))


@pytest.fixture
async def secured(make_client: ClientMaker) -> Client:
    return await make_client(api_keys=KEYS)


async def finished(client: Client, task_id: str) -> str:
    """The task's final status, waited for with the API's long poll from the next offset."""
    offset = 0
    for _ in range(120):
        response = await client.get(f"/api/v1/tasks/{task_id}?from={offset}&wait=5", headers=ALICE)
        assert response.status == 200, await response.text()
        data = (await response.json())["data"]
        if data["status"] not in ("pending", "running"):
            return str(data["status"])
        offset = data["next_offset"]
    raise AssertionError(f"task {task_id} never finished")


async def test_create_a_workspace_upload_a_file_and_download_the_same_bytes(
    browser: Browser, secured: Client, tmp_path: Path
) -> None:
    page = await signed_in_page(browser, secured, "/console/workspaces", accept_downloads=True)
    await expect(page.locator("#workspace-rows tr[data-workspace-id=default]")).to_be_visible()

    await page.get_by_label("Name").fill("ws1")
    await page.get_by_label("Python mode").select_option("fresh")
    await page.get_by_role("button", name="Create").click()
    await expect(page).to_have_url(re.compile(r"/console/workspaces/ws1$"))
    await expect(page.locator("#files-state")).to_have_text("No files yet.")

    await page.get_by_label("File to upload").set_input_files(
        files=[{"name": "data 1.csv", "mimeType": "text/csv", "buffer": CONTENT}]
    )
    await page.get_by_label("sub-directory").fill("reports/2024")
    await page.get_by_role("button", name="Upload", exact=True).click()

    row = page.locator('#file-rows tr[data-path="user_upload/reports/2024/data 1.csv"]')
    await expect(row).to_be_visible()
    await expect(page.locator("#toast")).to_contain_text("Uploaded user_upload/reports/2024/data 1.csv")
    await expect(
        page.locator('#file-rows tr[data-path="user_upload/reports"][data-type=dir]')
    ).to_be_visible()
    await expect(row.locator("td").nth(1)).to_have_text(f"{len(CONTENT)} B")
    async with page.expect_download() as download_info:
        await row.get_by_role("link", name="Download user_upload/reports/2024/data 1.csv").click()
    download = await download_info.value
    assert download.suggested_filename == "data 1.csv"
    saved = tmp_path / "downloaded"
    await download.save_as(saved)
    assert saved.read_bytes() == CONTENT
    # The page used the files API of that workspace, not another path to the disk.
    listed = await (await secured.get("/api/v1/workspaces/ws1/files", headers=ALICE)).json()
    assert {"path": "user_upload/reports/2024/data 1.csv", "size": len(CONTENT)}.items() <= {
        k: v for f in listed["files"] if f["type"] == "file" for k, v in f.items()
    }.items()
    workspaces = await (await secured.get("/api/v1/workspaces", headers=ALICE)).json()
    assert {"ws1": "fresh"}.items() <= {
        w["workspace_id"]: w["python_mode"] for w in workspaces["workspaces"]
    }.items()


async def test_a_conversation_shows_its_history_and_a_follow_up_continues_it(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_python", {"code": "print(6 * 7)"})], content="Computing."),
            Reply("The answer is 42."),
            Reply("You asked for 6 times 7."),
        ]
    )
    created = await secured.post("/api/v1/conversations", headers=ALICE)
    conversation_id = (await created.json())["conversation_id"]
    sent = await secured.post(
        "/api/v1/messages",
        json={"conversation_id": conversation_id, "message": "what is 6*7?"},
        headers=ALICE,
    )
    assert sent.status == 202, await sent.text()
    assert await finished(secured, (await sent.json())["task_id"]) == "completed"
    page = await signed_in_page(browser, secured, "/console/workspaces/default")

    link = page.locator(f"#conversation-list li[data-conversation-id={conversation_id}] a")
    await expect(link).to_have_text("what is 6*7?")
    await expect(page.locator("#conversation-list .item-meta")).to_contain_text("4 messages")
    await link.click()
    await expect(page).to_have_url(
        re.compile(f"/console/workspaces/default/conversations/{conversation_id}$")
    )

    history = page.locator("#history > li")
    await expect(history).to_have_count(4)
    await expect(page.locator("#conversation-title")).to_have_text("what is 6*7?")
    roles = [await item.get_attribute("data-role") for item in await history.all()]
    assert roles == ["user", "assistant", "tool", "assistant"]
    await expect(history.nth(0)).to_contain_text("what is 6*7?")
    await expect(history.nth(1).locator(".model-text")).to_have_text("Computing.")
    await expect(history.nth(1).locator(".tool-name")).to_have_text("execute_python")
    await expect(history.nth(1).locator("pre.code")).to_have_text("print(6 * 7)")
    await expect(history.nth(2).locator("pre.output")).to_contain_text("42")
    await expect(history.nth(3)).to_contain_text("The answer is 42.")

    await page.get_by_role("textbox", name="Message").fill("what did I ask?")
    await page.get_by_role("button", name="Send and follow the task").click()
    await expect(page).to_have_url(re.compile(r"/console/tasks/[0-9a-f-]+$"))
    follow_up = page.url.rsplit("/", 1)[1]
    assert await finished(secured, follow_up) == "completed"
    detail = await (await secured.get(f"/api/v1/conversations/{conversation_id}", headers=ALICE)).json()
    assert detail["conversation"]["messages"][-1]["content"] == "You asked for 6 times 7."


async def test_another_users_workspace_is_not_shown(browser: Browser, secured: Client) -> None:
    made = await secured.post("/api/v1/workspaces", json={"workspace_id": "alices"}, headers=ALICE)
    assert made.status == 200
    page = await signed_in_page(browser, secured, "/console/workspaces/alices", key="tok-bob")

    await expect(page.locator("#workspace-error")).to_have_text("There is no workspace alices of yours.")
    await expect(page.locator("#file-rows tr")).to_have_count(0)
    await expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()

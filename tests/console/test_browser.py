"""The console in a real browser (Debian's Chromium through Playwright), asserting on the DOM:
signing in, starting a task and watching its tool output stream in while it runs, canceling it,
the task list, a follow-up in the same conversation, the chat playground, and signing out.

Real sandboxes and the scripted model server; every wait is on a DOM condition with Playwright's
generous timeouts, never on time. With ``AGENT_CONSOLE_SCREENSHOTS=<dir>`` the tests also save the
pages they reach as ``<dir>/<name>.png`` (docs/console/ holds the ones docs/console.md shows)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, Route, expect

from tests.api.conftest import ClientMaker
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

Client = TestClient[Any, Any]
KEYS = "alice:tok-alice,bob:tok-bob"
WAIT = 60_000  # ms: a sandbox start on a loaded CI machine
SCREENSHOTS = os.environ.get("AGENT_CONSOLE_SCREENSHOTS")


async def snapshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
async def secured(make_client: ClientMaker) -> Client:
    return await make_client(api_keys=KEYS)


async def signed_in_page(browser: Browser, client: Client, key: str = "tok-alice") -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT)
    await page.goto(str(client.make_url("/console")))
    await expect(page).to_have_url(re.compile(r"/console/signin\?next=/console$"))
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/console$"))
    await expect(page.get_by_text("Signed in as")).to_contain_text("alice" if key == "tok-alice" else "bob")
    return page


async def start_task(page: Page, message: str) -> str:
    await page.get_by_role("textbox", name="Message", exact=True).fill(message)
    await page.get_by_role("button", name="Start task").click()
    await expect(page).to_have_url(re.compile(r"/console/tasks/[0-9a-f-]+$"))
    return page.url.rsplit("/", 1)[1]


async def test_sign_in_start_a_task_watch_its_output_stream_in_and_cancel_it(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    # The command prints, then blocks: its output can only be on the page because it streamed.
    model_server.add(
        ToolCalls(
            [Call("execute_bash", {"command": "echo streamed-before-the-end; sleep 600"})],
            content="Let me run it.",
        )
    )
    page = await signed_in_page(browser, secured)

    task_id = await start_task(page, "print something, then wait")

    output = page.locator(".tool pre.output")
    await expect(output).to_contain_text("streamed-before-the-end")
    await expect(page.locator("#task-status")).to_have_text("running")
    await snapshot(page, "task-running")
    await expect(page.locator(".tool pre.code")).to_have_text("echo streamed-before-the-end; sleep 600")
    await expect(page.locator(".iteration .model-text")).to_have_text("Let me run it.")
    await page.get_by_role("button", name="Cancel task").click()
    await expect(page.locator("#task-status")).to_have_text("canceled")
    await expect(page.locator(".final-canceled")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel task")).to_be_disabled()
    state = await (
        await secured.get(f"/api/v1/tasks/{task_id}", headers={"Authorization": "Bearer tok-alice"})
    ).json()
    assert state["data"]["status"] == "canceled"


async def test_a_finished_task_shows_exit_code_tokens_and_answer_then_a_follow_up_continues_it(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_python", {"code": "print(6 * 7)"})]),
            Reply("The answer is 42."),
            Reply("Yes, still 42."),
        ]
    )
    page = await signed_in_page(browser, secured)
    first = await start_task(page, "compute 6*7")

    await expect(page.locator(".final-completed")).to_contain_text("The answer is 42.")
    await expect(page.locator("#task-status")).to_have_text("completed")
    await expect(page.locator(".tool .badge")).to_have_text("exit 0")
    await expect(page.locator(".tool pre.output")).to_have_text("42\n")
    await expect(page.locator(".iteration")).to_have_count(2)
    await expect(page.locator(".iteration").first).to_contain_text("15 tokens (10 in, 5 out)")
    await expect(page.locator("#task-tokens")).to_have_text("30")
    await snapshot(page, "task")
    await page.set_viewport_size({"width": 390, "height": 844})
    await snapshot(page, "task-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})

    await page.get_by_label("Message in the same conversation").fill("sure?")
    await page.get_by_role("button", name="Send").click()
    await expect(page).not_to_have_url(re.compile(first))
    await expect(page.locator(".final-completed")).to_contain_text("Yes, still 42.")
    assert model_server.requests[-1]["messages"][-1] == {"role": "user", "content": "sure?"}

    await page.get_by_role("link", name="Tasks").click()
    rows = page.locator("#task-rows tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first.locator(".status")).to_have_text("completed")
    await expect(rows.nth(1)).to_contain_text(first[:8])
    await expect(rows.nth(1).locator("td[data-label=Tokens]")).to_have_text("30")
    await snapshot(page, "tasks")


async def test_the_chat_playground_renders_the_answer_as_a_timeline(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [ToolCalls([Call("execute_bash", {"command": "echo 5050"})]), Reply("The sum is 5050.")]
    )
    page = await signed_in_page(browser, secured)
    await page.get_by_role("link", name="Chat").click()

    await page.get_by_role("textbox", name="Message", exact=True).fill("sum 1..100")
    await page.get_by_role("button", name="Send").click()

    await expect(page.locator(".final-completed")).to_contain_text("The sum is 5050.")
    await expect(page.locator(".tool pre.output")).to_have_text("5050\n")
    await expect(page.locator(".tool .badge")).to_have_text("exit 0")
    await expect(page.locator("#chat-state")).to_contain_text("2 iterations")
    await snapshot(page, "chat")


async def test_signing_out_clears_access(browser: Browser, secured: Client) -> None:
    page = await signed_in_page(browser, secured)

    await page.get_by_role("button", name="Sign out").click()

    await expect(page).to_have_url(re.compile(r"/console/signin$"))
    await snapshot(page, "signin")
    status = await page.evaluate("fetch('/api/v1/tasks').then((r) => r.status)")
    assert status == 401
    await page.goto(str(secured.make_url("/console/chat")))
    await expect(page).to_have_url(re.compile(r"/console/signin\?next=/console/chat$"))
    assert not [c for c in await page.context.cookies() if c["name"] == "agent_worker_session"]


async def test_anonymous_loopback_mode_works_without_signing_in(
    browser: Browser, client: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("hello"))
    page = await browser.new_page()
    page.set_default_timeout(WAIT)
    await page.goto(str(client.make_url("/console")))

    await expect(page.get_by_text("Anonymous")).to_be_visible()
    await start_task(page, "hi")
    await expect(page.locator(".final-completed")).to_contain_text("hello")


async def test_a_phone_width_keeps_the_list_readable(browser: Browser, secured: Client) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(str(secured.make_url("/console/signin")))
    await page.get_by_label("API key").fill("tok-alice")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()

    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing forces a sideways scroll


async def test_another_users_task_page_shows_nothing_of_it(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("alice's secret answer"))
    alice = {"Authorization": "Bearer tok-alice"}
    started = await secured.post("/api/v1/messages", json={"message": "alice's secret task"}, headers=alice)
    task_id = (await started.json())["task_id"]
    page = await signed_in_page(browser, secured, "tok-bob")

    await page.goto(str(secured.make_url(f"/console/tasks/{task_id}")))

    await expect(page.locator("#task-error")).to_have_text("No such task (or it is not yours).")
    await expect(page.locator("main")).not_to_contain_text("secret")
    await page.goto(str(secured.make_url("/console")))
    await expect(page.locator("#list-state")).to_have_text("No tasks yet.")


async def test_exit_codes_time_outs_and_long_output_are_shown(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls(
                [
                    Call("execute_bash", {"command": "echo oops >&2; exit 3"}),
                    Call("execute_bash", {"command": "sleep 30", "timeout": 1}),
                    Call("execute_bash", {"command": "seq 1 500"}),
                ]
            ),
            Reply("done"),
        ]
    )
    page = await signed_in_page(browser, secured)
    await start_task(page, "three commands")

    await expect(page.locator(".final-completed")).to_be_visible()
    tools = page.locator(".tool")
    await expect(tools).to_have_count(3)
    await expect(tools.nth(0).locator(".badge")).to_have_text("exit 3")
    await expect(tools.nth(0).locator(".stderr")).to_have_text("oops\n")
    await expect(tools.nth(1).locator(".badge")).to_have_text("timed out")
    await expect(tools.nth(1).locator(".tool-info")).to_contain_text("timeout 1 s")
    long_output = tools.nth(2).locator("pre.output")
    await expect(long_output).to_have_class(re.compile(r"\bcollapsed\b"))
    await tools.nth(2).get_by_role("button", name="Show all output").click()
    await expect(long_output).not_to_have_class(re.compile(r"\bcollapsed\b"))
    await expect(long_output).to_contain_text("500")


async def test_the_task_list_follows_a_task_to_its_end_without_a_reload(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(ToolCalls([Call("execute_bash", {"command": "sleep 600"})]))
    alice = {"Authorization": "Bearer tok-alice"}
    started = await secured.post("/api/v1/messages", json={"message": "wait"}, headers=alice)
    task_id = (await started.json())["task_id"]
    page = await signed_in_page(browser, secured)

    row = page.locator(f"#task-rows tr[data-task-id='{task_id}']")
    await expect(row.locator(".status")).to_have_text(re.compile("pending|running"))
    canceled = await secured.post(f"/api/v1/tasks/{task_id}/cancel", headers=alice)
    assert canceled.status == 200

    await expect(row.locator(".status")).to_have_text("canceled")


async def test_a_dropped_stream_resumes_from_the_last_event_it_had(
    browser: Browser, secured: Client, model_server: ScriptedModelServer
) -> None:
    """The page's first stream is cut after the line "first" (the test answers it in the server's
    place, then ends it); the browser reconnects (with Last-Event-ID) and the worker sends the
    rest: "second" arrives, "first" is not shown twice."""
    gate = "until [ -f /workspace/user_upload/{0} ]; do sleep 0.1; done"
    command = f"{gate.format('a')}; echo first; {gate.format('b')}; echo second; sleep 600"
    model_server.add(ToolCalls([Call("execute_bash", {"command": command})]))
    alice = {"Authorization": "Bearer tok-alice"}

    async def events_from(task_id: str, offset: int, until: str) -> list[dict[str, Any]]:
        while True:
            params = {"from": offset, "wait": 5}
            answer = await (
                await secured.get(f"/api/v1/tasks/{task_id}", params=params, headers=alice)
            ).json()
            events: list[dict[str, Any]] = answer["data"]["events"]
            if any(e["type"] == until or until in str(e["data"].get("content", "")) for e in events):
                return events

    async def open_gate(name: str) -> None:
        form = FormData()
        form.add_field("file", b"", filename=name)
        uploaded = await secured.post("/api/v1/files/upload", data=form, headers=alice)
        assert uploaded.status == 200, await uploaded.text()

    started = await secured.post("/api/v1/messages", json={"message": "two lines"}, headers=alice)
    task_id = (await started.json())["task_id"]
    await events_from(task_id, 0, "tool_call")
    streams = 0
    resumed = asyncio.Event()

    async def cut_first_stream(route: Route) -> None:
        nonlocal streams
        streams += 1
        if streams > 1:
            resumed.set()
            await route.continue_()
            return
        offset = int(re.search(r"from=(\d+)", route.request.url).group(1))  # type: ignore[union-attr]
        await open_gate("a")
        events = await events_from(task_id, offset, "first")
        frames = "retry: 100\n\n" + "".join(
            f"id: {e['offset']}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events
        )
        await route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=frames)

    page = await signed_in_page(browser, secured)
    await page.route("**/api/v1/tasks/*/events?*", cut_first_stream)
    await page.goto(str(secured.make_url(f"/console/tasks/{task_id}")))
    output = page.locator(".tool pre.output")
    await expect(output).to_have_text("first\n")
    await asyncio.wait_for(resumed.wait(), WAIT / 1000)

    await open_gate("b")

    await expect(output).to_have_text("first\nsecond\n")
    await page.get_by_role("button", name="Cancel task").click()
    await expect(page.locator("#task-status")).to_have_text("canceled")

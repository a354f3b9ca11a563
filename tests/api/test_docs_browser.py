"""The docs page, rendered by a real browser: Debian's Chromium, driven by Playwright.

Serving the Swagger UI files is not enough: a renderer that cannot read OpenAPI 3.1 still loads
and then shows "Unable to render this definition". Playwright's own browser download is not used
(no network): the test launches the system's ``chromium`` and skips when there is none. It uses
Playwright's async API on the test's own event loop, which also serves the app; the sync API
would leave that loop marked as running for every later test of the session.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, async_playwright, expect

from tests.api.conftest import ClientMaker

pytestmark = pytest.mark.docker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("no chromium binary (scripts/test.sh installs Debian's)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            await launched.close()


async def test_docs_page_renders_every_operation(browser: Browser, make_client: ClientMaker) -> None:
    client: TestClient[Any, Any] = await make_client()
    document = await (await client.get("/openapi.json")).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    page = await browser.new_page()

    await page.goto(str(client.make_url("/docs")))

    chat = page.locator(".opblock-post .opblock-summary-path[data-path='/chat']")
    await expect(chat).to_be_visible()
    await expect(page.locator(".opblock")).to_have_count(operations)
    await expect(page.get_by_text("Unable to render this definition")).to_have_count(0)

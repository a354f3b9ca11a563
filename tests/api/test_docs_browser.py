"""The docs page, rendered by a real browser: Debian's Chromium, driven by Playwright.

Serving the Swagger UI files is not enough: a renderer that cannot read OpenAPI 3.1 still loads
and then shows "Unable to render this definition". The browser is the system's ``chromium``
(tests/chromium.py), and the test skips when there is none.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from tests.api.conftest import ClientMaker
from tests.chromium import browser

__all__ = ["browser"]

pytestmark = pytest.mark.docker


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

"""Fixtures for the console's tests: the real app (tests/api's fixtures), Debian's Chromium
(tests/chromium.py) and a page signed in with an API key."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from tests.api.conftest import client, make_client, make_settings, model_server
from tests.chromium import browser

__all__ = ["browser", "client", "make_client", "make_settings", "model_server", "signed_in_page"]

WAIT = 60_000  # ms: a sandbox start on a loaded CI machine


async def signed_in_page(
    browser: Browser,
    client: TestClient[Any, Any],
    path: str,
    key: str = "tok-alice",
    *,
    wait: float = WAIT,
    **options: Any,
) -> Page:
    """A desktop-sized page at ``path``, reached through the sign-in form it redirects to;
    ``options`` go to ``Browser.new_page`` (``accept_downloads``...)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, **options)
    page.set_default_timeout(wait)
    await page.goto(str(client.make_url(path)))
    await expect(page).to_have_url(re.compile(r"/console/signin\?next="))
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    return page

"""Fixtures for the console's tests: the real app (tests/api's fixtures) and Debian's Chromium.

Playwright's own browser download is not used (no network): the browser is the system's
``chromium``, launched through ``executable_path`` with Playwright's async API on the test's own
event loop, which also serves the app (see tests/api/test_docs_browser.py).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.api.conftest import client, make_client, make_settings, model_server

__all__ = ["browser", "client", "make_client", "make_settings", "model_server"]

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

"""Debian's Chromium for the tests that drive a real browser (the console's, the docs page's).

Playwright's own browser download is not used (no network): the browser is the system's
``chromium``, launched through ``executable_path``, and a test skips when there is none. It uses
Playwright's async API on the test's own event loop, which also serves the app; the sync API
would leave that loop marked as running for every later test of the session.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

__all__ = ["browser"]

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

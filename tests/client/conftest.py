"""The client's tests run against the real app on loopback (the API tests' fixtures)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import TWO_USER_KEYS, ClientMaker, make_client, make_settings, model_server

__all__ = ["make_client", "make_settings", "model_server"]


@pytest.fixture
async def served(make_client: ClientMaker) -> TestClient[Any, Any]:
    """The app with alice (``tok-a``) and bob (``tok-b``), rate limits off; its URL is ``base_url(served)``."""
    return await make_client(
        api_keys=TWO_USER_KEYS,
        rate_limit_per_minute=0,
        rate_limit_concurrency=0,
        public_rate_limit_per_minute=0,
        public_rate_limit_concurrency=0,
    )


def base_url(served: TestClient[Any, Any]) -> str:
    return str(served.make_url("")).rstrip("/")

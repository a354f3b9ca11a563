"""The one log line per request: a canceled handler is not logged as a server error."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from structlog.testing import capture_logs

from api.web.logging import request_context_middleware


async def _answered(request: web.Request) -> web.StreamResponse:
    return web.Response(status=201)


async def _canceled(request: web.Request) -> web.StreamResponse:
    raise asyncio.CancelledError


async def test_each_request_is_logged_once_with_its_status() -> None:
    with capture_logs() as logs:
        await request_context_middleware(make_mocked_request("POST", "/x"), _answered)
    assert [(e["event"], e["status"]) for e in logs] == [("request", 201)]


async def test_a_canceled_handler_is_logged_as_client_closed_not_as_a_server_error() -> None:
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await request_context_middleware(make_mocked_request("GET", "/mcp"), _canceled)
    assert [(e["event"], e["status"]) for e in logs] == [("request", 499)]

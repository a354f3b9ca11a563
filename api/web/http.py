"""Helpers every surface uses to read requests and write JSON responses."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from runtime.errors import InputError, describe_validation_error

__all__ = [
    "MAX_INT",
    "MAX_MESSAGE_CHARS",
    "describe_validation_error",
    "json_model",
    "last_event_id",
    "parse_body",
    "parse_query",
]

M = TypeVar("M", bound=BaseModel)

MAX_MESSAGE_CHARS = 100_000
"""The longest message a user may send, to ``/chat`` or to a conversation."""

MAX_INT = 2**53 - 1
"""The largest integer a caller may send in any field (offsets, pages, counts): one every JSON client
reads exactly, and far below SQLite's 64-bit limit, so ``offset + 1`` never overflows a query."""


async def parse_body(request: web.Request, model: type[M], *, allow_empty: bool = False) -> M:
    """The request's JSON body validated as ``model``; any problem is an :class:`InputError` (400)."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return model()
        raise InputError("request body is empty; send a JSON object")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InputError(f"invalid request: {describe_validation_error(e)}") from None


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string validated as ``model``; any problem is an :class:`InputError` (400)."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as e:
        raise InputError(f"invalid query: {describe_validation_error(e)}") from None


def last_event_id(request: web.Request) -> int | None:
    """The ``Last-Event-ID`` header: the offset of the last event the client has (-1: none yet).

    No header is None; anything but an integer from -1 to the largest offset is an
    :class:`InputError` (400), raised before a stream starts.
    """
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        return None
    try:
        offset = int(raw)
    except ValueError:
        raise InputError(f"Last-Event-ID must be an event offset, got {raw[:40]!r}") from None
    if not -1 <= offset <= MAX_INT:
        raise InputError(f"Last-Event-ID must be an event offset from -1 to {MAX_INT}, got {raw[:40]}")
    return offset


def json_model(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")

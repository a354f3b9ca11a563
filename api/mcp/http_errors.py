"""The MCP SDK's own HTTP errors, in the envelope every error on ``/mcp`` has.

The SDK's transports answer some errors with a JSON-RPC error object (a body that is no JSON-RPC
message, an unknown session), others with plain text (``Invalid Content-Type header``,
``session_id is required``) or no body at all (a 406 for a missing ``Accept``). Clients of a
JSON-RPC surface parse one shape: :func:`json_rpc_errors` wraps one of the SDK's ASGI
applications so that an error answer (status >= 400) that is not JSON becomes
:func:`api.web.jsonrpc.http_error_body` of its status and text, as the errors our middlewares
raise on ``/mcp``. A JSON error answer, and every other answer, passes as it was sent.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from api.mcp.asgi import ASGIApp, Message, Receive, Send
from api.web.jsonrpc import http_error_body

__all__ = ["json_rpc_errors"]

_REPLACED_HEADERS = frozenset({b"content-type", b"content-length"})


def json_rpc_errors(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Any, receive: Receive, send: Send) -> None:
        held: Message | None = None  # the start of an error answer that is not JSON
        text = bytearray()

        async def send_json_errors(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and _plain_error(message):
                held = message
            elif held is None:
                await send(message)
            else:
                text.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await _send_error(send, held, text.decode("utf-8", "replace").strip())

        await app(scope, receive, send_json_errors)

    return wrapped


def _plain_error(start: Message) -> bool:
    if start["status"] < 400:
        return False
    content_type = dict(start.get("headers", ())).get(b"content-type", b"")
    return not content_type.lower().startswith(b"application/json")


async def _send_error(send: Send, start: Message, text: str) -> None:
    status: int = start["status"]
    if not text:
        try:
            text = HTTPStatus(status).phrase
        except ValueError:
            text = f"HTTP {status}"
    body = json.dumps(http_error_body(status, text)).encode()
    headers = [
        (name, value) for name, value in start.get("headers", ()) if name.lower() not in _REPLACED_HEADERS
    ]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

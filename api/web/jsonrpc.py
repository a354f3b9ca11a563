"""JSON-RPC 2.0 over HTTP POST, with Server-Sent Events for the methods that stream.

:func:`serve` answers one POST from a table of :class:`Method`\\ s, as JSON-RPC 2.0 says:

- a body that is not JSON: ``-32700``; not a request object: ``-32600``; unknown method:
  ``-32601``; params that are not an object or fail validation: ``-32602``; a bug: ``-32603``;
- a batch (array) gets an array of answers, in order, without the notifications' (a batch of
  notifications only: HTTP 204); methods that stream cannot be batched (``-32600``);
- a notification (no ``id``) runs and gets no answer (HTTP 204);
- a streaming method answers ``text/event-stream``: one ``data:`` line per result, each a whole
  JSON-RPC response with the request's id (``id:`` lines let a client resume with
  ``Last-Event-ID``), ``: keep-alive`` comments while nothing happens; an error before the stream
  starts is a plain JSON answer.

Errors are always HTTP 200 with an ``error`` member. Our own errors (:mod:`runtime.errors`) map by
their HTTP status: 400 / 404 / 422 → ``-32602``, others → ``-32000`` with ``data.httpStatus``.
Errors raised before a handler runs (401, 413, 429 from the middlewares) keep their HTTP status and
get the same body through :func:`http_error_body` (see ``api.web.errors.register_envelope``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from api.web.errors import status_of
from runtime.errors import AgentWorkerError

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SERVER_ERROR",
    "Call",
    "JsonRpcHttpError",
    "Method",
    "RpcError",
    "Stream",
    "http_error_body",
    "serve",
]

log = structlog.get_logger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # implementation-defined: one of our errors with an HTTP status (409, 503, ...)
MAX_BATCH = 50

RequestId = str | int | None


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    id: RequestId
    notification: bool


StreamItem = tuple[dict[str, Any], str | None] | None
"""(result, SSE event id or None) or None for a keep-alive."""


@dataclass(frozen=True)
class Stream:
    """What a streaming method returns once the work is started: the results to send."""

    items: AsyncGenerator[StreamItem, None]


Handler = Callable[[web.Request, Call], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    handler: Handler  # returns the result, or a Stream when ``streams``
    streams: bool = False


def _code_for_status(status: int) -> int:
    if status == 500:
        return INTERNAL_ERROR
    return INVALID_REQUEST if status in (400, 404, 405, 413) else SERVER_ERROR


class JsonRpcErrorObject(BaseModel):
    code: int = Field(
        description="Ours: -32600 for HTTP 400 / 404 / 405 / 413, -32603 for 500, else -32000. An MCP "
        "transport's own errors use the JSON-RPC codes (-32700 parse error, -32602, ...)."
    )
    message: str
    data: dict[str, int] | None = Field(
        None, description='{"httpStatus": <the HTTP status>}; absent from an MCP transport\'s own errors.'
    )


class JsonRpcHttpError(BaseModel):
    """An HTTP error (4xx / 5xx) on a JSON-RPC surface, as a JSON-RPC error response."""

    jsonrpc: str = "2.0"
    id: None = None
    error: JsonRpcErrorObject


def http_error_body(status: int, reason: str) -> dict[str, object]:
    """An HTTP-level error (the request never reached a method) as a JSON-RPC error response."""
    error = RpcError(_code_for_status(status), reason, {"httpStatus": status})
    return {"jsonrpc": "2.0", "id": None, "error": error.as_dict()}


def _success(call_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "result": result}


def _failure(call_id: RequestId, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": error.as_dict()}


def _json(body: Any) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/json")


def _rpc_error(e: Exception) -> RpcError:
    if isinstance(e, RpcError):
        return e
    if isinstance(e, AgentWorkerError):
        status = status_of(e)
        code = INVALID_PARAMS if status in (400, 404, 422) else _code_for_status(status)
        return RpcError(code, str(e), {"httpStatus": status})
    log.error("rpc_internal_error", exc_info=e)
    return RpcError(INTERNAL_ERROR, "internal error; see the worker log for this request id")


def _parse(item: Any) -> Call | tuple[RequestId, RpcError]:
    if not isinstance(item, dict):
        return None, RpcError(INVALID_REQUEST, "a request must be a JSON object")
    call_id = item.get("id")
    if isinstance(call_id, bool) or not isinstance(call_id, str | int | None):
        return None, RpcError(INVALID_REQUEST, "id must be a string, an integer or null")
    if item.get("jsonrpc") != "2.0":
        return call_id, RpcError(INVALID_REQUEST, 'jsonrpc must be exactly "2.0"')
    method = item.get("method")
    if not isinstance(method, str) or not method:
        return call_id, RpcError(INVALID_REQUEST, "method must be a non-empty string")
    params = item.get("params", {})
    if isinstance(params, list):
        return call_id, RpcError(INVALID_PARAMS, "params must be an object (named parameters)")
    if not isinstance(params, dict):
        return call_id, RpcError(INVALID_REQUEST, "params must be an object")
    return Call(method, params, call_id, notification="id" not in item)


async def _run(
    request: web.Request, methods: Mapping[str, Method], item: Any, *, batched: bool
) -> tuple[RequestId, bool, Any]:
    """(id, whether to answer, result): the result is an RpcError, or a Stream for a lone streaming call."""
    parsed = _parse(item)
    if not isinstance(parsed, Call):
        return parsed[0], True, parsed[1]  # an invalid request is answered, even without an id
    answer = not parsed.notification
    method = methods.get(parsed.method)
    if method is None:
        return parsed.id, answer, RpcError(METHOD_NOT_FOUND, f"method not found: {parsed.method}")
    if batched and method.streams:
        error = RpcError(INVALID_REQUEST, f"{parsed.method} streams its answer; it cannot be batched")
        return parsed.id, answer, error
    try:
        result = await method.handler(request, parsed)
    except Exception as e:
        return parsed.id, answer, _rpc_error(e)
    if isinstance(result, Stream) and not answer:
        await result.items.aclose()  # a notification starts the work; nobody reads the stream
    return parsed.id, answer, result


def _answer(call_id: RequestId, answer: bool, result: Any) -> dict[str, Any] | None:
    if not answer:
        return None
    return _failure(call_id, result) if isinstance(result, RpcError) else _success(call_id, result)


async def serve(request: web.Request, methods: Mapping[str, Method]) -> web.StreamResponse:
    """Answer one JSON-RPC POST (a request, a notification or a batch)."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return _json(_failure(None, RpcError(PARSE_ERROR, f"parse error: {e}")))
    if isinstance(body, list):
        if not 1 <= len(body) <= MAX_BATCH:
            return _json(_failure(None, RpcError(INVALID_REQUEST, f"a batch holds 1-{MAX_BATCH} requests")))
        answers = [_answer(*await _run(request, methods, item, batched=True)) for item in body]
        sent = [answer for answer in answers if answer is not None]
        return _json(sent) if sent else web.Response(status=204)
    call_id, answer, result = await _run(request, methods, body, batched=False)
    if isinstance(result, Stream) and answer:
        return await _stream(request, call_id, result)
    single = _answer(call_id, answer, result)
    return web.Response(status=204) if single is None else _json(single)


async def _stream(request: web.Request, call_id: RequestId, stream: Stream) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the client left: stop reading the task for it
        async with contextlib.aclosing(stream.items) as items:
            try:
                async for item in items:
                    await response.write(_frame(call_id, item))
            except ConnectionResetError:
                raise
            except Exception as e:
                error = _rpc_error(e)
                await response.write(f"data: {json.dumps(_failure(call_id, error))}\n\n".encode())
        await response.write_eof()
    return response


def _frame(call_id: RequestId, item: StreamItem) -> bytes:
    if item is None:
        return b": keep-alive\n\n"
    result, event_id = item
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {json.dumps(_success(call_id, result))}\n\n".encode()

"""The one place errors become HTTP responses.

Domain errors come from :mod:`runtime.errors`; this module adds the ones only HTTP has::

    AgentWorkerError (runtime.errors)
    ├── UnauthorizedError     401  missing or unknown credentials
    └── TooManyRequestsError  429  over a rate limit (``api.web.rate_limits`` adds Retry-After)

Every error answer is JSON ``{"success": false, "error": "<reason>"}`` (the task API's envelope) with
the status below, unless the surface the request hit registered its own envelope with
:func:`register_envelope` (JSON-RPC for ``/a2a`` and ``/mcp``, ``{code, message, data}`` for the
capability catalogue). Nothing unexpected ever leaks a traceback; it is logged with the request id.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from runtime.errors import (
    AgentWorkerError,
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    UnavailableError,
    UnprocessableError,
)

__all__ = [
    "ErrorRenderer",
    "TooManyRequestsError",
    "UnauthorizedError",
    "error_middleware",
    "error_response",
    "register_envelope",
    "status_of",
]

log = structlog.get_logger(__name__)


class UnauthorizedError(AgentWorkerError):
    """Missing or unknown credentials."""


class TooManyRequestsError(AgentWorkerError):
    """The caller is over a rate limit."""


_STATUS: list[tuple[type[AgentWorkerError], int]] = [
    (InputError, 400),
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (UnprocessableError, 422),
    (TooManyRequestsError, 429),
    (UnavailableError, 503),
]


def status_of(error: AgentWorkerError) -> int:
    """The HTTP status of one of our errors (500 for one this table lacks)."""
    return next((code for kind, code in _STATUS if isinstance(error, kind)), 500)


ErrorRenderer = Callable[[int, str], dict[str, object]]
"""(HTTP status, reason) → the JSON body of an error in a surface's envelope."""

_ENVELOPES = web.AppKey("error_envelopes", list[tuple[str, ErrorRenderer]])


def register_envelope(app: web.Application, path_prefix: str, render: ErrorRenderer) -> None:
    """Errors on ``path_prefix`` (and paths below it) are rendered by ``render``."""
    app.setdefault(_ENVELOPES, []).append((path_prefix.rstrip("/"), render))


def _success_envelope(status: int, reason: str) -> dict[str, object]:
    return {"success": False, "error": reason}


def error_response(
    request: web.Request, status: int, reason: str, headers: dict[str, str] | None = None
) -> web.Response:
    render: ErrorRenderer = _success_envelope
    for prefix, candidate in request.app.get(_ENVELOPES, []):
        if request.path == prefix or request.path.startswith(prefix + "/"):
            render = candidate
            break
    body = json.dumps(render(status, reason))
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AgentWorkerError as e:
        status = status_of(e)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(request, status, str(e), headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        reason = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
        return error_response(request, e.status, reason, {k: v for k, v in e.headers.items() if k == "Allow"})
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return error_response(request, 500, "internal error; see the worker log for this request id")

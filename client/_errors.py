"""The client's errors: one tree, whatever the surface that answered.

::

    AgentWorkerClientError
    ├── TransportError            the server could not be reached, or the connection broke
    └── APIError                  the server answered with an error status (``status``, ``message``)
        ├── BadRequestError       400  invalid input (the message says which field)
        ├── AuthenticationError   401  missing or unknown API key
        ├── PermissionDeniedError 403
        ├── NotFoundError         404  no such object, or another user's
        ├── ConflictError         409  e.g. a task already running for this user or conversation
        ├── PayloadTooLargeError  413
        ├── UnprocessableError    422  an idempotency key reused for another request
        ├── RateLimitError        429  ``retry_after`` seconds, when the server said
        └── ServerError           5xx  (503: the worker is draining or a dependency is down)

The worker answers errors in two envelopes: ``{"success": false, "error"}`` (the task API, files,
``/chat``) and ``{"code", "message", "data", "timestamp"}`` (capabilities, transactions, ``/v1``);
:func:`error_from_response` reads either, and a body in neither keeps its text as the message.
"""

from __future__ import annotations

import json

import httpx

__all__ = [
    "APIError",
    "AgentWorkerClientError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnprocessableError",
    "error_from_response",
]


class AgentWorkerClientError(Exception):
    """Every error this client raises."""


class TransportError(AgentWorkerClientError):
    """No answer: the server is unreachable, timed out, or dropped the connection."""


class APIError(AgentWorkerClientError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class BadRequestError(APIError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class PayloadTooLargeError(APIError):
    pass


class UnprocessableError(APIError):
    pass


class RateLimitError(APIError):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after


class ServerError(APIError):
    pass


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableError,
}


def _message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "(no body)"
    if isinstance(data, dict):
        if isinstance(data.get("error"), str):  # {"success": false, "error"}
            return str(data["error"])
        if isinstance(data.get("message"), str):  # {"code", "message", "data", "timestamp"}
            return str(data["message"])
    return body.strip()[:500]


def error_from_response(response: httpx.Response) -> APIError:
    """The error an answer with a 4xx/5xx status stands for; its body must have been read."""
    status, message = response.status_code, _message(response.text)
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return RateLimitError(status, message, seconds)
    if status >= 500:
        return ServerError(status, message)
    return _BY_STATUS.get(status, APIError)(status, message)

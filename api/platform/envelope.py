"""The ``/v1`` envelope: every answer of the agent platform, errors included.

``{"code", "message", "data", "timestamp"}``: ``code`` 0 on success, else the HTTP status with
``data`` null; ``timestamp`` is an ISO-8601 string (the capability catalogue's envelope has Unix
seconds instead). Errors become this envelope in the one error middleware
(:mod:`api.web.errors`), through :func:`setup_envelope`; handlers raise the errors of
:mod:`runtime.errors` and answer successes with :func:`ok`. :func:`add_route` registers a route
with the OpenAPI registry, its response documented inside the envelope.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field

from api.web.errors import register_envelope
from api.web.http import MAX_INT
from api.web.openapi import OpenAPIRegistry, Operation

__all__ = [
    "MAX_PAGE_SIZE",
    "PREFIX",
    "PageQuery",
    "V1Envelope",
    "V1Error",
    "add_route",
    "iso_now",
    "ok",
    "setup_envelope",
]

PREFIX = "/v1"
TAG = "platform"
MAX_PAGE_SIZE = 100

D = TypeVar("D")


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class V1Envelope(BaseModel, Generic[D]):
    """A successful ``/v1`` answer."""

    code: int = Field(0, description="0: success.")
    message: str = "success"
    data: D
    timestamp: str = Field(default_factory=iso_now, description="ISO-8601, UTC.")


class V1Error(BaseModel):
    """A ``/v1`` error: ``code`` is the HTTP status, ``data`` null."""

    code: int
    message: str
    data: None = None
    timestamp: str


class PageQuery(BaseModel):
    """``page`` and ``page_size`` of a ``/v1`` list; list queries add their filters to it."""

    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=MAX_INT, description="Page number, from 1.")
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, description="Items per page, 1-100.")


def _render_error(status: int, reason: str) -> dict[str, object]:
    return V1Error(code=status, message=reason, timestamp=iso_now()).model_dump()


def ok(data: BaseModel | None, message: str = "success", status: int = 200) -> web.Response:
    """``data`` in the success envelope."""
    return web.Response(
        text=V1Envelope[Any](data=data, message=message).model_dump_json(),
        status=status,
        content_type="application/json",
    )


def setup_envelope(app: web.Application) -> None:
    """Every error under ``/v1`` (unknown paths and methods too) is rendered in the envelope."""
    register_envelope(app, PREFIX, _render_error)


def add_route(
    app: web.Application,
    registry: OpenAPIRegistry,
    method: str,
    path: str,
    handler: Handler,
    summary: str,
    *,
    response: type[BaseModel] | None = None,
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    public: bool = False,
    errors: tuple[int, ...] = (),
    description: str = "",
) -> None:
    """Route ``/v1<path>``, documented with ``response`` wrapped in :class:`V1Envelope`."""
    registry.add(
        app.router,
        Operation(
            method=method,
            path=f"{PREFIX}{path}",
            summary=summary,
            tag=TAG,
            request=request,
            response=V1Envelope[response] if response is not None else None,  # type: ignore[valid-type]
            query=query,
            status=status,
            public=public,
            errors=errors,
            description=description,
            error_model=V1Error,
        ),
        handler,
    )

"""structlog set-up (once, at the edge) and the per-request log context."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api.web.keys import REQUEST_ID

__all__ = ["configure_logging", "request_context_middleware"]


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """JSON lines, or a console renderer on a TTY; contextvars (request/run ids) merged first."""
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Binds a request id (honouring a sane incoming X-Request-ID) and logs one line per request."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    log = structlog.get_logger("api.request")
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:  # a streamed response has already sent its headers
                response.headers["X-Request-ID"] = request_id
            return response
        except asyncio.CancelledError:
            # Not a server error: the handler was canceled (the client went away, or the worker is
            # shutting down) after it may already have streamed its answer; nginx's "client closed".
            status = 499
            raise
        finally:
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                duration=round(time.monotonic() - started, 4),
            )

"""HTTP metrics and spans: one middleware, outermost, for every request of every surface.

A request is labelled by its route's template (``/api/v1/tasks/{task_id}``), never its raw path,
so the label's values are the routes that exist (``unmatched`` for a 404 or 405 no route took);
the method is one of the standard ones or ``other``. The span follows the HTTP semantic
conventions, continues the caller's trace when it sends ``traceparent``, and is the parent of
what the request runs (a ``/chat`` run, with its model and tool calls); while it is recorded, its
trace id is bound into the log context, so the request's log lines name their trace.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram

from api.web.keys import TELEMETRY
from runtime.telemetry import Telemetry

__all__ = ["HTTP_METRICS", "route_of", "setup_telemetry", "telemetry_middleware"]

HTTP_METRICS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("agent_http_requests_total", "counter", ("method", "route", "status"), "HTTP requests answered."),
    (
        "agent_http_request_duration_seconds",
        "histogram",
        ("method", "route"),
        "Time to answer (a stream: until it ends).",
    ),
]
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
UNMATCHED = "unmatched"


class _HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        (requests, _, request_labels, requests_doc), (duration, _, duration_labels, duration_doc) = (
            HTTP_METRICS
        )
        self.requests = Counter(
            requests.removesuffix("_total"), requests_doc, request_labels, registry=registry
        )
        self.duration = Histogram(
            duration, duration_doc, duration_labels, registry=registry, buckets=_BUCKETS
        )


_HTTP = web.AppKey("http_metrics", _HttpMetrics)


def setup_telemetry(app: web.Application, telemetry: Telemetry) -> None:
    app[TELEMETRY] = telemetry
    app[_HTTP] = _HttpMetrics(telemetry.registry)


def route_of(request: web.BaseRequest) -> str:
    """The template of the route that took the request, or ``unmatched``."""
    resource = request.match_info.route.resource if isinstance(request, web.Request) else None
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def telemetry_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    telemetry, http = request.app[TELEMETRY], request.app[_HTTP]
    route = route_of(request)
    method = request.method if request.method in _METHODS else "other"
    attributes = {"http.request.method": method, "http.route": route, "url.path": request.path}
    caller = propagate.extract(request.headers) if telemetry.tracing else None
    with telemetry.span(f"{method} {route}", attributes, SpanKind.SERVER, caller) as span:
        trace = {"trace_id": f"{span.get_span_context().trace_id:032x}"} if span.is_recording() else {}
        status = 500
        started = time.monotonic()
        try:
            with structlog.contextvars.bound_contextvars(**trace):
                response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = 499  # the client went away, or the worker stops: as the request log says
            raise
        except web.HTTPException as e:  # a redirect (errors are answers by now)
            status = e.status
            raise
        finally:
            http.requests.labels(method, route, str(status)).inc()
            http.duration.labels(method, route).observe(time.monotonic() - started)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))

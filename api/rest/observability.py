"""``GET /metrics`` (Prometheus) and ``GET /ready`` (the readiness probe); see docs/observability.md.

``/metrics`` needs a key of ``AGENT_API_KEYS`` (the operators'; a platform node's key is a 403:
with open registration anyone can have one), or none when the worker serves anonymously, or when
``AGENT_METRICS_PUBLIC`` opens it (then it is rate-limited per address like ``/health``). It shows
counts across every user, never a user's ids: labels are route templates, models, tools, outcomes.

``/ready`` is public like ``/health``, which stays the liveness probe: a worker whose model server
is down is alive (restarting it would not help) but not ready (a load balancer should send work
elsewhere).
"""

from __future__ import annotations

import time
from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from api.web.auth import ANONYMOUS
from api.web.http import json_model
from api.web.keys import MODELS, SANDBOX_HEALTH, SETTINGS, STORE, TELEMETRY, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.errors import ForbiddenError
from runtime.health import Check, readiness

__all__ = ["METRICS_PATH", "Readiness", "setup_observability_routes"]

METRICS_PATH = "/metrics"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    timestamp: float
    checks: list[Check] = Field(description="Every check, each with its result; a failed one says why.")


async def metrics(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    user = request.get(USER, ANONYMOUS)
    if settings.tokens and not settings.metrics_public and user not in settings.tokens.values():
        raise ForbiddenError("/metrics is for the keys of AGENT_API_KEYS (the operators)")
    body = generate_latest(request.app[TELEMETRY].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def ready(request: web.Request) -> web.Response:
    app = request.app
    checks = await readiness(
        app.get(STORE), app.get(SANDBOX_HEALTH), app.get(MODELS), app[SETTINGS].ready_timeout
    )
    ok = all(check.ok for check in checks)
    body = Readiness(status="ready" if ok else "not_ready", timestamp=time.time(), checks=checks)
    return json_model(body, status=200 if ok else 503)


def setup_observability_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    router = app.router
    registry.add(
        router,
        Operation(
            "GET",
            METRICS_PATH,
            "Prometheus metrics of this worker (text exposition format)",
            "meta",
            errors=(403,),
            description="Needs a key of AGENT_API_KEYS unless AGENT_METRICS_PUBLIC is true (or the worker "
            "serves anonymously). The metrics and their labels are listed in docs/observability.md.",
            responses_raw={
                "200": {
                    "description": "Prometheus text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        metrics,
    )
    registry.add(
        router,
        Operation(
            "GET",
            "/ready",
            "Ready when the store answers, sandboxes can start and every model server answers (503 otherwise)",
            "meta",
            response=Readiness,
            public=True,
            also=(503,),
            description="The readiness probe; /health is the liveness probe. Each check waits at most "
            "AGENT_READY_TIMEOUT seconds.",
        ),
        ready,
    )

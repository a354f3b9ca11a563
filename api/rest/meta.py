"""Service metadata: ``/``, ``/health``, the OpenAPI document and the interactive docs.

The docs page is Swagger UI 5 (the first to read OpenAPI 3.1) served from the
``swagger-ui-bundle-v2`` package, so it works on hosts without internet access (no CDN).
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Literal

import swagger_ui_bundle
from aiohttp import web
from pydantic import BaseModel

from api.web.http import json_model
from api.web.keys import OPENAPI, SANDBOX_HEALTH, STORE
from api.web.openapi import OpenAPIRegistry, Operation

__all__ = ["API_TITLE", "health_problem", "setup_meta_routes"]

API_TITLE = "agent-worker"
API_VERSION = version("agent-worker")
_DESCRIPTION = (
    "Self-hosted agent runtime: an OpenAI-compatible agent loop whose execute_bash / execute_python "
    "tool calls run in hardened Docker sandboxes."
)

_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agent-worker API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>"""


class ServiceInfo(BaseModel):
    name: str
    version: str
    docs: str
    health: str


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    timestamp: float
    reason: str | None = None


async def root(request: web.Request) -> web.Response:
    return json_model(ServiceInfo(name=API_TITLE, version=API_VERSION, docs="/docs", health="/health"))


async def health_problem(app: web.Application) -> str | None:
    """Why the worker cannot take work (None when healthy): store closed, engine down, image missing."""
    if STORE not in app:
        return "store not open"
    return await app[SANDBOX_HEALTH].problem()


async def health(request: web.Request) -> web.Response:
    reason = await health_problem(request.app)
    body = Health(status="unhealthy" if reason else "healthy", timestamp=time.time(), reason=reason)
    return web.Response(
        text=body.model_dump_json(exclude_none=True),
        status=503 if reason else 200,
        content_type="application/json",
    )


async def openapi_document(request: web.Request) -> web.Response:
    document = request.app[OPENAPI].document(API_TITLE, API_VERSION, _DESCRIPTION)
    return web.json_response(document)


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_HTML, content_type="text/html")


def setup_meta_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    router = app.router
    registry.add(
        router,
        Operation("GET", "/", "Service name, version and links", "meta", response=ServiceInfo, public=True),
        root,
    )
    registry.add(
        router,
        Operation(
            "GET",
            "/health",
            "Healthy once the store is open and the sandbox image is present (503 otherwise)",
            "meta",
            response=Health,
            also=(503,),
            public=True,
        ),
        health,
    )
    router.add_get("/openapi.json", openapi_document)
    router.add_get("/docs", docs)
    router.add_static("/docs/static", swagger_ui_bundle.swagger_ui_path)

"""``/api/v1/models`` (the configured models, never their API keys) and ``/api/v1/health``.

``/api/v1/health`` is ``/health`` in the task API's envelope (``success``, ``error``), behind the
Bearer token like the rest of ``/api/v1``.
"""

from __future__ import annotations

import time
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from api.rest.meta import health_problem
from api.web.http import json_model
from api.web.keys import MODELS
from api.web.openapi import OpenAPIRegistry, Operation

__all__ = ["setup_model_routes"]


class ModelInfo(BaseModel):
    key: str
    model: str
    base_url: str | None
    description: str
    default: bool


class ModelList(BaseModel):
    success: bool = True
    models: list[ModelInfo]
    default: str


class ApiHealth(BaseModel):
    success: bool
    status: Literal["healthy", "unhealthy"]
    timestamp: float
    error: str | None = None


async def list_models(request: web.Request) -> web.Response:
    registry = request.app[MODELS]
    models = [
        ModelInfo(
            key=entry.key,
            model=entry.config.model,
            base_url=entry.config.base_url,
            description=entry.description,
            default=entry.key == registry.default_key,
        )
        for entry in registry.entries()
    ]
    return json_model(ModelList(models=models, default=registry.default_key))


async def api_health(request: web.Request) -> web.Response:
    reason = await health_problem(request.app)
    body = ApiHealth(
        success=reason is None,
        status="unhealthy" if reason else "healthy",
        timestamp=time.time(),
        error=reason,
    )
    return web.Response(
        text=body.model_dump_json(exclude_none=True),
        status=503 if reason else 200,
        content_type="application/json",
    )


def setup_model_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    registry.add(
        app.router,
        Operation(
            "GET",
            "/api/v1/models",
            "The models requests can choose by key, and the default one",
            "models",
            response=ModelList,
        ),
        list_models,
    )
    registry.add(
        app.router,
        Operation(
            "GET",
            "/api/v1/health",
            "Healthy once the store is open and the sandbox image is present (503 otherwise)",
            "meta",
            response=ApiHealth,
            errors=(503,),
        ),
        api_health,
    )

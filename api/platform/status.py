"""``GET /v1/status``: the platform is up (no key needed)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from api.platform.envelope import add_route, ok
from api.web.keys import ACCOUNTS
from api.web.openapi import OpenAPIRegistry

__all__ = ["setup_status_routes"]


class Status(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    registration: Literal["open", "closed"] = Field(description="Whether POST /v1/auth/register is open.")


async def get_status(request: web.Request) -> web.Response:
    registration: Literal["open", "closed"] = "open" if request.app[ACCOUNTS].registration_open else "closed"
    return ok(Status(version=version("agent-worker"), registration=registration))


def setup_status_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    add_route(app, registry, "GET", "/status", get_status, "The platform is up", response=Status, public=True)

"""``/v1/agents``: the registry of nodes; a node updates its own entry only."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from api.platform.envelope import PageQuery, add_route, ok
from api.web.http import parse_body, parse_query
from api.web.keys import REGISTRY, USER
from api.web.openapi import OpenAPIRegistry
from runtime.platform.registry import Agent, AgentPage, AgentUpdate

__all__ = ["setup_agent_routes"]


class AgentQuery(PageQuery):
    capability: str | None = Field(None, min_length=1, max_length=64, description="Only nodes with it.")
    min_trust: float | None = Field(None, ge=0, le=1, description="Only nodes trusted at least this (0-1).")


async def list_agents(request: web.Request) -> web.Response:
    query = parse_query(request, AgentQuery)
    page = await request.app[REGISTRY].list(query.capability, query.min_trust, query.page, query.page_size)
    return ok(page)


async def get_agent(request: web.Request) -> web.Response:
    return ok(await request.app[REGISTRY].get(request.match_info["agent_id"]))


async def update_agent(request: web.Request) -> web.Response:
    change = await parse_body(request, AgentUpdate)
    agent = await request.app[REGISTRY].update(request[USER], request.match_info["agent_id"], change)
    return ok(agent)


def setup_agent_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    add_route(
        app,
        registry,
        "GET",
        "/agents",
        list_agents,
        "List nodes, most trusted first",
        response=AgentPage,
        query=AgentQuery,
    )
    add_route(
        app, registry, "GET", "/agents/{agent_id}", get_agent, "One node", response=Agent, errors=(404,)
    )
    add_route(
        app,
        registry,
        "PUT",
        "/agents/{agent_id}",
        update_agent,
        "Update your own node's nickname or capabilities",
        request=AgentUpdate,
        response=Agent,
        errors=(403, 404),
    )

"""``/v1/trust``: the publisher of a done task rates its acceptor; anyone reads a node's trust."""

from __future__ import annotations

from aiohttp import web

from api.platform.envelope import PageQuery, add_route, ok
from api.web.http import parse_body, parse_query
from api.web.keys import TRUST, USER
from api.web.openapi import OpenAPIRegistry
from runtime.platform.trust import RateRequest, RateResult, TrustReport

__all__ = ["setup_trust_routes"]


async def rate(request: web.Request) -> web.Response:
    rating = await parse_body(request, RateRequest)
    return ok(await request.app[TRUST].rate(request[USER], rating), message="rated")


async def get_trust(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    report = await request.app[TRUST].report(request.match_info["agent_id"], query.page, query.page_size)
    return ok(report)


def setup_trust_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    add_route(
        app,
        registry,
        "POST",
        "/trust/rate",
        rate,
        "Rate the acceptor of a done task you published (once per task)",
        request=RateRequest,
        response=RateResult,
        errors=(400, 403, 404, 409),
        description="quality_score from 1.0 to 5.0; a task not done yet, or rated already, is a 409.",
    )
    add_route(
        app,
        registry,
        "GET",
        "/trust/{agent_id}",
        get_trust,
        "A node's trust score and rating history, newest first",
        response=TrustReport,
        query=PageQuery,
        errors=(404,),
    )

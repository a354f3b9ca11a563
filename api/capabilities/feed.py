"""``/api/v1/recommendations/feed`` and the public ``/api/v1/public/*`` routes, in the capability envelope.

The feed (:mod:`runtime.platform.feed`) pages with an opaque cursor; a cursor this server did not
give to the caller, or made for another ranking, is a 400. ``community-stats`` and
``openapi.json`` need no key.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.capabilities.routes import Envelope, EnvelopeError, envelope_response, error_envelope
from api.rest.meta import openapi_document
from api.web.errors import register_envelope
from api.web.http import parse_query
from api.web.keys import FEED, STORE, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.platform.feed import FeedPage
from runtime.platform.money import CreditsOut

__all__ = ["setup_feed_routes"]

FEED_PATH = "/api/v1/recommendations/feed"
PUBLIC_PREFIX = "/api/v1/public"
MAX_PAGE_SIZE = 100


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, description="Items per page (at most 100).")
    cursor: str | None = Field(
        None, min_length=1, max_length=1_024, description="The next_cursor of the previous page."
    )


class CommunityStats(BaseModel):
    nodes: int = Field(description="Agents on the platform (registered, operators' users, house agents).")
    public_capabilities: int
    open_tasks: int
    done_tasks: int
    completed_orders: int = Field(description="Orders of priced capabilities that completed.")
    credits_moved: CreditsOut = Field(description="Credits paid out of escrow for done tasks and orders.")


async def recommendation_feed(request: web.Request) -> web.Response:
    query = parse_query(request, FeedQuery)
    return envelope_response(await request.app[FEED].page(request[USER], query.page_size, query.cursor))


async def community_stats(request: web.Request) -> web.Response:
    counts = await request.app[STORE].feed.community_counts()
    return envelope_response(CommunityStats.model_validate(counts.model_dump()))


def setup_feed_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    register_envelope(app, FEED_PATH, error_envelope)
    register_envelope(app, PUBLIC_PREFIX, error_envelope)
    router = app.router
    registry.add(
        router,
        Operation(
            "GET",
            FEED_PATH,
            "Public capabilities and open tasks ranked for you, a cursor per page",
            "capabilities",
            query=FeedQuery,
            response=Envelope[FeedPage],
            errors=(400,),
            error_model=EnvelopeError,
            description="Items matching your capabilities first, then by their owner's trust, then the "
            "newest. Send next_cursor back as cursor until has_more is false; a cursor is bound to "
            "you and to the ranking (400 if it is not one this server gave you, or is stale).",
        ),
        recommendation_feed,
    )
    registry.add(
        router,
        Operation(
            "GET",
            f"{PUBLIC_PREFIX}/community-stats",
            "Counts of the platform: nodes, public capabilities, tasks, orders, credits moved",
            "capabilities",
            response=Envelope[CommunityStats],
            public=True,
            error_model=EnvelopeError,
        ),
        community_stats,
    )
    registry.add(
        router,
        Operation(
            "GET",
            f"{PUBLIC_PREFIX}/openapi.json",
            "This OpenAPI document (the same as /openapi.json)",
            "meta",
            public=True,
            responses_raw={"200": {"description": "The OpenAPI 3.1 document."}},
        ),
        openapi_document,
    )

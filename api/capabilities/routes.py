"""``/api/v1/capabilities``: the capability catalogue and invokes, in the capability envelope.

Every answer on these paths, errors included, is ``{"code", "message", "data", "timestamp"}``:
``code`` 0 and ``message`` "success" on success, else ``code`` is the HTTP status (the table in
docs/capabilities.md). A body ``idempotency_key`` on invoke runs the capability once per key: a
retry with the same key and body gets the first answer again (``Idempotent-Replayed: true``),
another body under the key is a 422, a retry while the first is starting a 409
(:mod:`runtime.features.idempotency`).

A capability is private (its owner's) or public (everyone's; others see it without its system
prompt). Invoking another user's priced capability is an order (:mod:`runtime.platform.orders`):
the price is held from the caller's wallet first, and the task's id is the transaction's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.web.errors import register_envelope
from api.web.http import MAX_INT, parse_body, parse_query
from api.web.idempotency import REPLAYED_HEADER
from api.web.keys import (
    CAPABILITIES,
    IDEMPOTENCY,
    MODELS,
    ORDERS,
    STORE,
    USER,
)
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.features.capabilities import Capability, NewCapability
from runtime.features.idempotency import INTERRUPTED, StoredResponse, check_key, fingerprint
from runtime.workspaces.records import DEFAULT_WORKSPACE

__all__ = [
    "PREFIX",
    "Envelope",
    "EnvelopeError",
    "envelope_response",
    "error_envelope",
    "setup_capability_routes",
]

PREFIX = "/api/v1/capabilities"
INVOKE_SCOPE = "capability_invoke"  # body idempotency keys, apart from the Idempotency-Key header's
MAX_PAGE_SIZE = 100

D = TypeVar("D")


class Envelope(BaseModel, Generic[D]):
    """The capability envelope of a successful answer."""

    code: int = Field(0, description="0: success.")
    message: str = "success"
    data: D
    timestamp: int = Field(default_factory=lambda: int(time.time()), description="Unix seconds.")


class EnvelopeError(BaseModel):
    """The capability envelope of an error: ``code`` is the HTTP status."""

    code: int
    message: str
    data: None = None
    timestamp: int


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    category: str | None = Field(None, max_length=64, description="Only capabilities of this category.")
    page: int = Field(1, ge=1, le=MAX_INT, description="Page number, from 1.")
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, description="Items per page (at most 100).")


class RatedCapability(Capability):
    rating: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The trust score (0-1, as on GET /v1/agents) of the node that delivers it: its "
        "owner's node, or for a global capability its house agent; null when there is no such node.",
    )


class CapabilityPage(BaseModel):
    items: list[RatedCapability]
    total: int
    page: int
    page_size: int
    has_more: bool


class InvokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        None,
        min_length=1,
        max_length=100_000,
        description="The input; omitted: the capability's default_input.",
    )
    idempotency_key: str | None = Field(
        None, description="Runs once per key (1-255 printable ASCII): a retry gets the first answer."
    )
    conversation_id: str | None = Field(None, max_length=100, description="Continue this conversation.")
    workspace_id: str = Field(DEFAULT_WORKSPACE, max_length=64, description="Workspace the task runs in.")


class Deleted(BaseModel):
    capability_id: str


class Invoked(BaseModel):
    task_id: str
    status: str = Field(description="running, or pending when the worker's running-task cap is reached.")
    conversation_id: str
    capability_id: str
    created_at: float
    transaction_id: str | None = Field(
        None, description="Another user's priced capability: the order paying it (the task's id)."
    )


def error_envelope(status: int, reason: str) -> dict[str, object]:
    return EnvelopeError(code=status, message=reason, timestamp=int(time.time())).model_dump()


def envelope_response(data: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=Envelope[Any](data=data).model_dump_json(),
        status=status,
        content_type="application/json",
    )


async def rated(request: web.Request, capabilities: list[Capability]) -> list[RatedCapability]:
    """The capabilities with their ratings, read in one query for all of them."""
    scores = await request.app[STORE].nodes.trust_scores([c.owner or c.id for c in capabilities])
    answer = []
    for capability in capabilities:
        found = scores.get(capability.owner or capability.id)
        # A global capability's node is its house agent, unless a user's node took the id first.
        delivered = found is not None and (capability.owner is not None or found[0] == "house")
        answer.append(RatedCapability(**dict(capability), rating=found[1] if found and delivered else None))
    return answer


async def list_capabilities(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    items = await request.app[CAPABILITIES].available(request[USER], query.category)
    start = (query.page - 1) * query.page_size
    page = items[start : start + query.page_size]
    return envelope_response(
        CapabilityPage(
            items=await rated(request, page),
            total=len(items),
            page=query.page,
            page_size=query.page_size,
            has_more=start + len(page) < len(items),
        )
    )


async def get_capability(request: web.Request) -> web.Response:
    capability = await request.app[CAPABILITIES].get(request[USER], request.match_info["capability_id"])
    return envelope_response((await rated(request, [capability.shown_to(request[USER])]))[0])


async def create_capability(request: web.Request) -> web.Response:
    spec = await parse_body(request, NewCapability)
    request.app[MODELS].get(spec.model_key)  # an unknown model key is a 400 now, not at every invoke
    created = await request.app[CAPABILITIES].create(request[USER], spec)
    return envelope_response((await rated(request, [created]))[0], status=201)


async def delete_capability(request: web.Request) -> web.Response:
    capability_id = request.match_info["capability_id"]
    await request.app[CAPABILITIES].delete(request[USER], capability_id)
    return envelope_response(Deleted(capability_id=capability_id))


async def invoke_capability(request: web.Request) -> web.Response:
    body = await parse_body(request, InvokeRequest, allow_empty=True)
    if body.idempotency_key is None:
        return await _invoke(request, body)
    user, key, keys = request[USER], check_key(body.idempotency_key), request.app[IDEMPOTENCY]
    digest = fingerprint(
        request.match_info["capability_id"], body.model_dump_json(exclude={"idempotency_key"})
    )
    stored = await keys.begin(user, key, digest, scope=INVOKE_SCOPE)
    if stored is not None:
        return web.Response(
            status=stored.status,
            body=stored.body,
            headers={"Content-Type": stored.content_type, REPLAYED_HEADER: "true"},
        )
    try:
        response = await _invoke(request, body)
    except asyncio.CancelledError:  # it may have started: never again under this key
        await asyncio.shield(keys.complete_without_response(user, key, INTERRUPTED, scope=INVOKE_SCOPE))
        raise
    except Exception:
        await keys.release(user, key, scope=INVOKE_SCOPE)  # refused, nothing started: it may be sent again
        raise
    assert isinstance(response.body, bytes)
    stored = StoredResponse(status=response.status, content_type=response.content_type, body=response.body)
    await keys.complete(user, key, stored, scope=INVOKE_SCOPE)
    return response


async def _invoke(request: web.Request, body: InvokeRequest) -> web.Response:
    capability_id = request.match_info["capability_id"]
    capability = await request.app[CAPABILITIES].get(request[USER], capability_id)
    started = await request.app[ORDERS].start(
        request[USER],
        capability_id,
        body.message,
        surface="rest",
        conversation_id=body.conversation_id,
        workspace_id=body.workspace_id,
    )
    invoked = Invoked(
        task_id=started.record.id,
        status=started.record.status,
        conversation_id=started.conversation_id,
        capability_id=capability_id,
        created_at=started.record.created_at,
        transaction_id=started.record.id if capability.sold_to(request[USER]) else None,
    )
    return envelope_response(invoked, status=202)


def setup_capability_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    register_envelope(app, PREFIX, error_envelope)
    router, tag = app.router, "capabilities"
    registry.add(
        router,
        Operation(
            "GET",
            PREFIX,
            "List the capabilities you can invoke: the global ones, then your own",
            tag,
            query=ListQuery,
            response=Envelope[CapabilityPage],
            errors=(400,),
            error_model=EnvelopeError,
        ),
        list_capabilities,
    )
    registry.add(
        router,
        Operation(
            "POST",
            PREFIX,
            "Create a capability of your own: private (yours only) or public, with a price per order",
            tag,
            request=NewCapability,
            response=Envelope[RatedCapability],
            status=201,
            errors=(409,),
            error_model=EnvelopeError,
            description="409: the id is taken (by a global capability, one of yours, or a public one when "
            "publishing), or you have 200.",
        ),
        create_capability,
    )
    registry.add(
        router,
        Operation(
            "GET",
            f"{PREFIX}/{{capability_id}}",
            "A capability",
            tag,
            response=Envelope[RatedCapability],
            errors=(404,),
            error_model=EnvelopeError,
        ),
        get_capability,
    )
    registry.add(
        router,
        Operation(
            "DELETE",
            f"{PREFIX}/{{capability_id}}",
            "Delete a capability of your own (global ones are read-only: 409)",
            tag,
            response=Envelope[Deleted],
            errors=(404, 409),
            error_model=EnvelopeError,
        ),
        delete_capability,
    )
    registry.add(
        router,
        Operation(
            "POST",
            f"{PREFIX}/{{capability_id}}/invoke",
            "Run a capability: starts a background task with its profile",
            tag,
            request=InvokeRequest,
            response=Envelope[Invoked],
            status=202,
            errors=(404, 409, 422, 503),
            error_model=EnvelopeError,
            description="Follow the task with GET /api/v1/tasks/{task_id} (or A2A tasks/get). The body "
            "may be empty when the capability has a default_input. Another user's priced capability is "
            "ordered: its price is held from your wallet (409 when short) and paid to its owner when the "
            "task completes, refunded when it fails or is canceled; transaction_id names the order.",
        ),
        invoke_capability,
    )

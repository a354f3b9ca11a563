"""``/v1/memory``: shared memory, read by each entry's author and participants only."""

from __future__ import annotations

from aiohttp import web

from api.platform.envelope import PageQuery, add_route, ok
from api.web.http import parse_body, parse_query
from api.web.keys import MEMORY, USER
from api.web.openapi import OpenAPIRegistry
from runtime.platform.memory import MemoryDraft, MemoryEntry, MemoryFilter, MemoryPage

__all__ = ["setup_memory_routes"]


class MemoryQuery(MemoryFilter, PageQuery):
    """The filters and the page."""


async def write_memory(request: web.Request) -> web.Response:
    draft = await parse_body(request, MemoryDraft)
    return ok(await request.app[MEMORY].write(request[USER], draft), message="written", status=201)


async def read_memory(request: web.Request) -> web.Response:
    query = parse_query(request, MemoryQuery)
    return ok(await request.app[MEMORY].read(request[USER], query, query.page, query.page_size))


def setup_memory_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    add_route(
        app,
        registry,
        "POST",
        "/memory",
        write_memory,
        "Write a memory entry for you and the participants you name",
        request=MemoryDraft,
        response=MemoryEntry,
        status=201,
        errors=(400,),
        description="Participants must be nodes of the registry; only they and you can read it.",
    )
    add_route(
        app,
        registry,
        "GET",
        "/memory",
        read_memory,
        "Memory entries you wrote or take part in, newest first",
        response=MemoryPage,
        query=MemoryQuery,
        description="participant and tag filter exactly; q is a case-insensitive substring of the "
        "content or a tag (CJK text included).",
    )

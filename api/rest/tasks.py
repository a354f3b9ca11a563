"""Following a task: offset polling (with long-poll), SSE, cancel.

A poll answers in the task API's envelope: ``{"success": true, "data": {"status", "events", "next_offset"}}``
with each event as ``{"offset", "type", "data", "timestamp"}``. Clients loop while
``status == "running"``, so while a page does not reach the end of the log the answer says
``running`` (with ``has_more: true``) even if the task has ended: no client stops before it has
read every event.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.web.http import MAX_INT, json_model, last_event_id, parse_query
from api.web.keys import STORE, TASKS, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.store import RunRecord, StoredEvent
from runtime.tasks.follow import PAGE_SIZE, Heartbeat, find_task, follow, read_page

__all__ = ["setup_task_routes"]

MAX_WAIT = 30.0


class PollQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: int = Field(0, alias="from", ge=0, le=MAX_INT, description="First event offset to return.")
    wait: float = Field(0.0, ge=0, le=MAX_WAIT, description="Seconds to hold the poll open for a new event.")
    limit: int = Field(PAGE_SIZE, ge=1, le=PAGE_SIZE, description="Most events in one answer.")


class EventOut(BaseModel):
    offset: int
    type: str
    data: dict[str, Any]
    timestamp: float


class TaskState(BaseModel):
    task_id: str
    status: str = Field(description="pending | running | completed | failed | canceled.")
    events: list[EventOut]
    next_offset: int = Field(description="Pass as `from` in the next poll.")
    has_more: bool = Field(description="More events are already stored past this page.")
    conversation_id: str | None
    workspace_id: str | None
    created_at: float
    updated_at: float
    error: str | None


class TaskResponse(BaseModel):
    success: bool = True
    data: TaskState


class CancelResponse(BaseModel):
    success: bool = True
    task_id: str
    status: str


def _event_out(stored: StoredEvent) -> EventOut:
    data = stored.event.model_dump(mode="json", exclude={"type"})
    return EventOut(offset=stored.offset, type=stored.event.type, data=data, timestamp=stored.timestamp)


async def _task(request: web.Request) -> RunRecord:
    return await find_task(request.app[STORE], request[USER], request.match_info["task_id"])


async def poll_task(request: web.Request) -> web.Response:
    query = parse_query(request, PollQuery)
    record = await _task(request)
    page = await read_page(request.app[TASKS], record.id, query.from_, limit=query.limit, wait=query.wait)
    record = await request.app[STORE].get_run(record.id)  # the status after the wait
    status = "running" if page.has_more and record.status not in ("pending", "running") else record.status
    state = TaskState(
        task_id=record.id,
        status=status,
        events=[_event_out(e) for e in page.events],
        next_offset=page.next_offset,
        has_more=page.has_more,
        conversation_id=record.conversation_id,
        workspace_id=record.workspace_id,
        created_at=record.created_at,
        updated_at=record.updated_at,
        error=record.error,
    )
    return json_model(TaskResponse(data=state))


def _sse_start(request: web.Request, query: PollQuery) -> int:
    last = last_event_id(request)
    return query.from_ if last is None else last + 1


async def stream_task(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, PollQuery)
    record = await _task(request)
    offset = _sse_start(request, query)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    async for item in follow(request.app[TASKS], record.id, offset):
        if isinstance(item, Heartbeat):
            await response.write(b": keep-alive\n\n")
            continue
        out = _event_out(item)
        frame = f"id: {out.offset}\nevent: {out.type}\ndata: {json.dumps(out.model_dump())}\n\n"
        await response.write(frame.encode())
    await response.write_eof()
    return response


async def cancel_task(request: web.Request) -> web.Response:
    record = await _task(request)
    await request.app[TASKS].cancel(record.id)
    record = await request.app[STORE].get_run(record.id)
    return json_model(CancelResponse(task_id=record.id, status=record.status))


def setup_task_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    router = app.router
    registry.add(
        router,
        Operation(
            "GET",
            "/api/v1/tasks/{task_id}",
            "Poll a task's status and its events from an offset",
            "tasks",
            query=PollQuery,
            response=TaskResponse,
            errors=(400, 404),
            description="`from` past the end returns no events and the same next_offset. `wait` (up to "
            "30 s) holds the answer until a new event arrives or the task ends.",
        ),
        poll_task,
    )
    registry.add(
        router,
        Operation(
            "GET",
            "/api/v1/tasks/{task_id}/events",
            "The task's events as Server-Sent Events (id = offset), closing after the final one",
            "tasks",
            query=PollQuery,
            errors=(400, 404),
            responses_raw={"200": {"description": "text/event-stream", "content": {"text/event-stream": {}}}},
            description="Resume with the Last-Event-ID header (or `from`). Each event's `data` is the same "
            "object a poll returns.",
        ),
        stream_task,
    )
    registry.add(
        router,
        Operation(
            "POST",
            "/api/v1/tasks/{task_id}/cancel",
            "Cancel a task: kills its running tool, abandons the model call, ends it canceled",
            "tasks",
            response=CancelResponse,
            errors=(404,),
            description="Idempotent: a task that has already ended answers with its final status.",
        ),
        cancel_task,
    )

"""The caller's tasks: listing them; following one (offset polling with long-poll, SSE); cancel.

A poll answers in the task API's envelope: ``{"success": true, "data": {"status", "events", "next_offset"}}``
with each event as ``{"offset", "type", "data", "timestamp"}``. Clients loop while
``status == "running"``, so while a page does not reach the end of the log the answer says
``running`` (with ``has_more: true``) even if the task has ended: no client stops before it has
read every event.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.web.http import MAX_INT, json_model, last_event_id, parse_query
from api.web.keys import STORE, TASKS, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.platform.money import CreditsOut
from runtime.store import RunRecord, RunStatus, StoredEvent
from runtime.store.task_summaries import TaskSummaryRow
from runtime.tasks.follow import PAGE_SIZE, Heartbeat, find_task, follow, read_page

__all__ = ["setup_task_routes"]

MAX_WAIT = 30.0
MAX_PAGE_SIZE = 100


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: RunStatus | None = Field(
        None, description="Only tasks in this status: pending, running, completed, failed or canceled."
    )
    conversation_id: str | None = Field(None, max_length=100, description="Only this conversation's tasks.")
    page: int = Field(1, ge=1, le=MAX_INT, description="Page number, from 1.")
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE, description="Tasks per page (at most 100).")

    @field_validator("status", "conversation_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # `?status=&conversation_id=`: no filter


class TaskUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TaskSummary(BaseModel):
    task_id: str
    status: str = Field(description="pending | running | completed | failed | canceled.")
    conversation_id: str | None
    workspace_id: str | None
    capability_id: str | None = Field(description="The capability the task runs, if it was invoked as one.")
    amount: CreditsOut | None = Field(
        description="A paid capability order: its price (held, paid or refunded as the order's status "
        "says; GET /api/v1/transactions/{task_id}). null otherwise."
    )
    created_at: float
    updated_at: float
    started_at: float | None = Field(description="When it started running; null while pending.")
    finished_at: float | None = Field(description="When its final event was written; null until then.")
    duration: float | None = Field(description="Seconds from start to finish, or to now while it runs.")
    usage: TaskUsage = Field(description="Tokens of its model calls so far.")
    error: str | None


class TaskList(BaseModel):
    success: bool = True
    tasks: list[TaskSummary] = Field(description="Newest first.")
    total: int = Field(description="Tasks matching the filters, on every page.")
    page: int
    page_size: int
    has_more: bool


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


def _summary(row: TaskSummaryRow, now: float) -> TaskSummary:
    end = row.finished_at if row.finished_at is not None else now
    return TaskSummary(
        task_id=row.id,
        status=row.status,
        conversation_id=row.conversation_id,
        workspace_id=row.workspace_id,
        capability_id=row.capability_id,
        amount=row.amount,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration=None if row.started_at is None else max(0.0, end - row.started_at),
        usage=TaskUsage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            total_tokens=row.prompt_tokens + row.completion_tokens,
        ),
        error=row.error,
    )


async def list_tasks(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    rows, total = await request.app[STORE].task_summaries.page(
        request[USER],
        status=query.status,
        conversation_id=query.conversation_id,
        offset=(query.page - 1) * query.page_size,
        limit=query.page_size,
    )
    now = time.time()
    return json_model(
        TaskList(
            tasks=[_summary(row, now) for row in rows],
            total=total,
            page=query.page,
            page_size=query.page_size,
            has_more=(query.page - 1) * query.page_size + len(rows) < total,
        )
    )


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
            "/api/v1/tasks",
            "List your tasks, newest first",
            "tasks",
            query=ListQuery,
            response=TaskList,
            errors=(400,),
            description="Tasks started by messages and capability invokes (not `/chat` runs), with their "
            "capability, price when paid, times and tokens. Empty `status` or `conversation_id`: no filter.",
        ),
        list_tasks,
    )
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

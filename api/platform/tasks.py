"""``/v1/tasks``: the task marketplace (publish, list, read, accept, complete, cancel).

Thin: bodies and queries are validated here (amounts with :mod:`runtime.platform.money`), the
rules are :class:`runtime.platform.marketplace.Marketplace`'s. The PUTs take ``Idempotency-Key``
(:mod:`api.web.idempotency`): a retry with the same key gets the first answer, not a 409.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NaiveDatetime

from api.platform.envelope import PageQuery, add_route, ok
from api.web.http import MAX_MESSAGE_CHARS, parse_body, parse_query
from api.web.keys import MARKETPLACE, USER
from api.web.openapi import OpenAPIRegistry
from runtime.platform.accounts import MAX_CAPABILITIES, CapabilityName
from runtime.platform.marketplace import TaskDraft
from runtime.platform.money import CreditsOut, PositiveCredits
from runtime.store.platform_tasks import TaskRow, TaskStatus

__all__ = ["PublishBody", "Task", "setup_task_routes", "task_draft"]

_TASK = "/tasks/{task_id}"


class PublishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, description="For a house agent: the message it runs."
    )
    required_capabilities: list[CapabilityName] = Field(default_factory=list, max_length=MAX_CAPABILITIES)
    budget: PositiveCredits = Field(description="Credits held in escrow until the task ends (2 decimals).")
    deadline: AwareDatetime | NaiveDatetime | None = Field(
        None, description="ISO 8601 (UTC unless it has an offset); still open then: canceled, refunded."
    )
    assignee: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Only this node may accept; a house agent (a global capability's id) accepts at "
        "once and runs the task in a sandbox.",
    )


class CompleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deliverables: dict[str, Any] = Field(description="What the acceptor delivers, e.g. {report, files}.")
    quality_notes: str | None = Field(None, max_length=10_000)


class TaskQuery(PageQuery):
    status: TaskStatus | None = Field(None, description="open | progress | done | canceled | failed")
    capability: str | None = Field(None, min_length=1, max_length=64, description="Only tasks requiring it.")


class Task(BaseModel):
    task_id: str
    title: str
    description: str
    required_capabilities: list[str]
    budget: CreditsOut
    status: TaskStatus
    publisher: str
    assignee: str | None
    acceptor: str | None
    deadline: str | None = Field(description="ISO 8601, UTC.")
    deliverables: dict[str, Any] | None
    quality_notes: str | None
    run_id: str | None = Field(
        description="A house agent's run: follow it on GET /api/v1/tasks/{run_id} (the publisher's key)."
    )
    created_at: float = Field(description="Unix seconds.")
    updated_at: float = Field(description="Unix seconds.")

    @classmethod
    def of(cls, row: TaskRow) -> Task:
        return cls(
            task_id=row.id,
            title=row.title,
            description=row.description,
            required_capabilities=row.capabilities,
            budget=row.budget,
            status=row.status,
            publisher=row.publisher,
            assignee=row.assignee,
            acceptor=row.acceptor,
            deadline=None
            if row.deadline is None
            else datetime.fromtimestamp(row.deadline, UTC).isoformat(timespec="seconds"),
            deliverables=None if row.deliverables is None else json.loads(row.deliverables),
            quality_notes=row.quality_notes,
            run_id=row.run_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TaskPage(BaseModel):
    items: list[Task]
    total: int
    page: int
    page_size: int
    has_more: bool


def _timestamp(value: datetime) -> float:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def task_draft(body: PublishBody) -> TaskDraft:
    """The marketplace's draft of a validated publish body (AI-drafted tasks go through it too)."""
    return TaskDraft(
        title=body.title,
        description=body.description,
        required_capabilities=body.required_capabilities,
        budget=body.budget,
        deadline=None if body.deadline is None else _timestamp(body.deadline),
        assignee=body.assignee,
    )


async def publish_task(request: web.Request) -> web.Response:
    body = await parse_body(request, PublishBody)
    row = await request.app[MARKETPLACE].publish(request[USER], task_draft(body))
    return ok(Task.of(row), status=201)


async def list_tasks(request: web.Request) -> web.Response:
    query = parse_query(request, TaskQuery)
    page = await request.app[MARKETPLACE].list_tasks(
        query.status, query.capability, query.page, query.page_size
    )
    return ok(
        TaskPage(
            items=[Task.of(row) for row in page.items],
            total=page.total,
            page=query.page,
            page_size=query.page_size,
            has_more=query.page * query.page_size < page.total,
        )
    )


async def get_task(request: web.Request) -> web.Response:
    return ok(Task.of(await request.app[MARKETPLACE].get(request.match_info["task_id"])))


async def accept_task(request: web.Request) -> web.Response:
    row = await request.app[MARKETPLACE].accept(request.match_info["task_id"], request[USER])
    return ok(Task.of(row))


async def complete_task(request: web.Request) -> web.Response:
    body = await parse_body(request, CompleteBody)
    row = await request.app[MARKETPLACE].complete(
        request.match_info["task_id"], request[USER], body.deliverables, body.quality_notes
    )
    return ok(Task.of(row))


async def cancel_task(request: web.Request) -> web.Response:
    row = await request.app[MARKETPLACE].cancel(request.match_info["task_id"], request[USER])
    return ok(Task.of(row))


def setup_task_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    add_route(
        app,
        registry,
        "POST",
        "/tasks",
        publish_task,
        "Publish a task: its budget moves from your balance to escrow",
        request=PublishBody,
        response=Task,
        status=201,
        errors=(400, 409),
        description="409: the budget is over your balance. With a house agent as assignee the task "
        "is accepted at once and runs in a sandbox; it ends done (deliverables {report, files, "
        "run_id}, escrow paid) or failed (escrow refunded).",
    )
    add_route(
        app,
        registry,
        "GET",
        "/tasks",
        list_tasks,
        "List tasks, newest first, by status and required capability",
        query=TaskQuery,
        response=TaskPage,
        errors=(400,),
    )
    add_route(app, registry, "GET", _TASK, get_task, "One task", response=Task, errors=(404,))
    add_route(
        app,
        registry,
        "PUT",
        f"{_TASK}/accept",
        accept_task,
        "Accept an open task (not your own): it goes to progress",
        response=Task,
        errors=(403, 404, 409),
        description="403: your own task, or one assigned to another node. 409: not open any more "
        "(accepted by another node first, canceled, or its deadline passed).",
    )
    add_route(
        app,
        registry,
        "PUT",
        f"{_TASK}/complete",
        complete_task,
        "Deliver a task you accepted: it is done and its escrow is paid to you",
        request=CompleteBody,
        response=Task,
        errors=(400, 403, 404, 409),
        description="403: another node accepted it. 409: it is not in progress.",
    )
    add_route(
        app,
        registry,
        "PUT",
        f"{_TASK}/cancel",
        cancel_task,
        "Cancel your open task: its escrow is refunded",
        response=Task,
        errors=(403, 404, 409),
        description="403: not your task. 409: it is not open any more.",
    )

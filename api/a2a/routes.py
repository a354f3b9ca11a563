"""A2A over JSON-RPC 2.0 at ``POST /a2a``: a thin adapter over the task manager and its event log.

A2A tasks are our tasks (the same ids, the same log; ``GET /api/v1/tasks/{id}`` shows them too)
and a ``contextId`` is a conversation (:mod:`runtime.features.context_aliases`). Methods, by dialect
(:mod:`api.a2a.wire` has the shapes):

==============  =========================================================================
flat            ``tasks/send``, ``tasks/sendSubscribe`` (``{"id"}`` follows a task instead)
A2A 0.3         ``message/send``, ``message/stream``, ``tasks/resubscribe``
both            ``tasks/get``, ``tasks/cancel``: the flat shape for a task that the flat
                ``tasks/send`` started (unless an ``A2A-Version`` header asks), else 0.3's
A2A 1.0         ``SendMessage``, ``SendStreamingMessage``, ``GetTask``, ``CancelTask``,
                ``SubscribeToTask``, ``ListTasks``
==============  =========================================================================

A stream starts with the task as it stands, then sends every change until the task ends; a client
that reconnects gets that snapshot again (or, with ``Last-Event-ID``, exactly the events after the
last one it saw), so it misses nothing. Sends wait for the task to end unless the caller says not
to (0.3 ``blocking: false``, 1.0 ``returnImmediately``); the flat ``tasks/send`` never waits.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

from aiohttp import web

from api.a2a.card import RPC_PATH, setup_agent_card_routes
from api.a2a.params import (
    TASK_NOT_CANCELABLE,
    TASK_NOT_FOUND,
    UNSUPPORTED_OPERATION,
    VERSION_NOT_SUPPORTED,
    ListParams,
    SendParams,
    TaskParams,
    parse_params,
)
from api.a2a.wire import TERMINAL, Dialect, TaskView, send_result, status_of_state, task_object, update_result
from api.web.errors import register_envelope
from api.web.http import last_event_id
from api.web.jsonrpc import (
    INVALID_PARAMS,
    Call,
    JsonRpcHttpError,
    Method,
    RpcError,
    Stream,
    StreamItem,
    http_error_body,
    serve,
)
from api.web.keys import CAPABILITY_RUNS, CONVERSATIONS, ORDERS, STORE, TASKS, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.errors import AgentWorkerError, NotFoundError
from runtime.features.capability_runs import Surface
from runtime.features.context_aliases import ContextAliases
from runtime.store import RunRecord, StoredEvent
from runtime.tasks.follow import Heartbeat, find_task, follow
from runtime.workspaces.records import DEFAULT_WORKSPACE

__all__ = ["setup_a2a_routes"]

VERSION_HEADER = "A2A-Version"
SUPPORTED_VERSIONS = ("0.3", "1.0")


def _aliases(request: web.Request) -> ContextAliases:
    return ContextAliases(request.app[STORE], request.app[CONVERSATIONS])


def _check_version(request: web.Request) -> None:
    version = request.headers.get(VERSION_HEADER)
    if version is not None and ".".join(version.strip().split(".")[:2]) not in SUPPORTED_VERSIONS:
        raise RpcError(VERSION_NOT_SUPPORTED, f"A2A version {version!r} is not supported; use 0.3 or 1.0")


async def _task(request: web.Request, task_id: str) -> RunRecord:
    try:
        return await find_task(request.app[STORE], request[USER], task_id)
    except NotFoundError:
        raise RpcError(TASK_NOT_FOUND, f"task {task_id} not found") from None


async def _view(request: web.Request, record: RunRecord, upto: int | None = None) -> TaskView:
    """The task folded from ``record`` (read first) and its log: every event, or those before ``upto``."""
    origin = await request.app[CAPABILITY_RUNS].origin(record.id)
    context = (
        await _aliases(request).context_of(record.conversation_id) if record.conversation_id else record.id
    )
    if upto is not None and record.status in TERMINAL:
        record = record.model_copy(update={"status": "running"})  # as it was at ``upto``: not ended yet
    view = TaskView.of(record, context, origin.capability_id if origin else None)
    for stored in await request.app[STORE].events(record.id, 0, upto):
        view.apply(stored)
    return view


async def _follow(request: web.Request, view: TaskView) -> AsyncGenerator[StoredEvent | None, None]:
    """The events after ``view`` until the task ends (the caller applies each); None: a keep-alive."""
    if view.ended:  # its final event is in the view already; the task may still be letting go of its slot
        await request.app[TASKS].wait_finished(view.id)
        return
    async for item in follow(request.app[TASKS], view.id, view.next_offset):
        yield None if isinstance(item, Heartbeat) else item


async def _updates(
    request: web.Request, record: RunRecord, dialect: Dialect, last_seen: int | None
) -> AsyncGenerator[StreamItem, None]:
    """A stream: the task as it stands (or, after ``last_seen``, nothing), then each change."""
    if last_seen is None:
        view = await _view(request, record)
        yield send_result(view, dialect), str(view.next_offset - 1)
    else:
        view = await _view(request, record, upto=last_seen + 1)
    async for stored in _follow(request, view):
        if stored is None:
            yield None
            continue
        results = [r for u in view.apply(stored) if (r := update_result(view, u, dialect)) is not None]
        for number, result in enumerate(results, start=1):
            # Only an event's last frame carries its id: a client that resumes from an id has all of it.
            yield result, str(stored.offset) if number == len(results) else None


# --- methods ---------------------------------------------------------------------------------------


async def _start(request: web.Request, params: SendParams, dialect: Dialect) -> RunRecord:
    message = params.message
    if dialect != "flat" and message is None:
        raise RpcError(INVALID_PARAMS, "params.message is required")
    if message is not None and message.task_id:
        raise RpcError(
            UNSUPPORTED_OPERATION,
            f"task {message.task_id} cannot take another message; send it with the task's contextId to "
            "continue the conversation in a new task",
        )
    user = request[USER]
    context_id = params.context_id if dialect == "flat" else message.context_id if message else None
    aliases = _aliases(request)
    new_context = context_id is not None and await aliases.find(user, context_id) is None
    conversation_id = await aliases.conversation_for(user, context_id)
    try:
        capability_id = params.capability()
        surface: Surface = "a2a-flat" if dialect == "flat" else "a2a"
        text = message.text() if message else None
        if capability_id is None:
            started = await request.app[CAPABILITY_RUNS].start(
                user, None, text, surface=surface, conversation_id=conversation_id
            )
        else:  # another user's priced capability is an order: paid from the caller's wallet first
            started = await request.app[ORDERS].start(
                user, capability_id, text, surface=surface, conversation_id=conversation_id
            )
    except AgentWorkerError:
        # Refused: the conversation made for a new contextId goes too (its alias with it), unless a
        # concurrent first message under that contextId has started a task on it meanwhile.
        if (
            new_context
            and conversation_id
            and not await request.app[TASKS].conversation_busy(conversation_id)
        ):
            await request.app[CONVERSATIONS].delete(user, DEFAULT_WORKSPACE, conversation_id)
        raise
    return started.record


async def send(request: web.Request, call: Call, dialect: Dialect) -> dict[str, Any]:
    _check_version(request)
    params = parse_params(SendParams, call.params)
    record = await _start(request, params, dialect)
    view = await _view(request, record)
    if dialect != "flat" and params.blocks() and not call.notification:  # nobody waits for a notification
        async for stored in _follow(request, view):
            if stored is not None:
                view.apply(stored)
    return send_result(view, dialect, params.history_length())


async def stream(request: web.Request, call: Call, dialect: Dialect) -> Stream:
    _check_version(request)
    params = parse_params(SendParams, call.params)
    if dialect == "flat" and params.id is not None:  # the flat dialect follows an existing task this way
        return await subscribe(request, call, "flat")
    record = await _start(request, params, dialect)
    return Stream(_updates(request, record, dialect, None))


async def subscribe(request: web.Request, call: Call, dialect: Dialect) -> Stream:
    _check_version(request)
    params = parse_params(TaskParams, call.params)
    record = await _task(request, params.id)
    return Stream(_updates(request, record, dialect, last_event_id(request)))


async def _legacy_dialect(request: web.Request, record: RunRecord) -> Dialect:
    """``tasks/get`` / ``tasks/cancel``: the flat shape for the tasks the flat ``tasks/send`` started
    and for orders (``POST /api/v1/transactions``), whose clients follow them with the flat methods."""
    if VERSION_HEADER in request.headers:
        return "0.3"
    origin = await request.app[CAPABILITY_RUNS].origin(record.id)
    return "flat" if origin is not None and origin.surface in ("a2a-flat", "order") else "0.3"


async def get(request: web.Request, call: Call, dialect: Dialect | None) -> dict[str, Any]:
    _check_version(request)
    params = parse_params(TaskParams, call.params)
    record = await _task(request, params.id)
    view = await _view(request, record)
    return task_object(view, dialect or await _legacy_dialect(request, record), params.history_length)


async def cancel(request: web.Request, call: Call, dialect: Dialect | None) -> dict[str, Any]:
    _check_version(request)
    params = parse_params(TaskParams, call.params)
    record = await _task(request, params.id)
    canceled = await request.app[TASKS].cancel(record.id)
    record = await request.app[STORE].get_run(record.id)
    if not canceled:
        raise RpcError(TASK_NOT_CANCELABLE, f"task {record.id} has already ended ({record.status})")
    view = await _view(request, record)
    return task_object(view, dialect or await _legacy_dialect(request, record))


async def list_tasks(request: web.Request, call: Call) -> dict[str, Any]:
    _check_version(request)
    params = parse_params(ListParams, call.params)
    user, offset = request[USER], params.offset()
    status = status_of_state(params.status) if params.status else None
    conversation_id = await _aliases(request).find(user, params.context_id) if params.context_id else None
    if (params.status and status is None) or (params.context_id and conversation_id is None):
        records: list[RunRecord] = []  # a state our tasks never take, or a context we do not know
        total = 0
    else:
        after = params.status_timestamp_after.timestamp() if params.status_timestamp_after else None
        records, total = await request.app[STORE].list_tasks(
            user,
            conversation_id=conversation_id,
            status=status,
            updated_after=after,
            limit=params.page_size,
            offset=offset,
        )
    tasks = []
    for record in records:
        task = task_object(await _view(request, record), "1.0", params.history_length)
        if not params.include_artifacts:
            task.pop("artifacts")
        tasks.append(task)
    more = offset + len(records) < total
    return {
        "tasks": tasks,
        "nextPageToken": str(offset + len(records)) if more else "",
        "pageSize": params.page_size,
        "totalSize": total,
    }


METHODS: dict[str, Method] = {
    # the flat dialect
    "tasks/send": Method(partial(send, dialect="flat")),
    "tasks/sendSubscribe": Method(partial(stream, dialect="flat"), streams=True),
    # the flat dialect and A2A 0.3
    "tasks/get": Method(partial(get, dialect=None)),
    "tasks/cancel": Method(partial(cancel, dialect=None)),
    # A2A 0.3
    "message/send": Method(partial(send, dialect="0.3")),
    "message/stream": Method(partial(stream, dialect="0.3"), streams=True),
    "tasks/resubscribe": Method(partial(subscribe, dialect="0.3"), streams=True),
    # A2A 1.0
    "SendMessage": Method(partial(send, dialect="1.0")),
    "SendStreamingMessage": Method(partial(stream, dialect="1.0"), streams=True),
    "GetTask": Method(partial(get, dialect="1.0")),
    "CancelTask": Method(partial(cancel, dialect="1.0")),
    "SubscribeToTask": Method(partial(subscribe, dialect="1.0"), streams=True),
    "ListTasks": Method(list_tasks),
}


async def a2a_endpoint(request: web.Request) -> web.StreamResponse:
    return await serve(request, METHODS)


def setup_a2a_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    register_envelope(app, RPC_PATH, http_error_body)
    setup_agent_card_routes(app, registry)
    registry.add(
        app.router,
        Operation(
            "POST",
            RPC_PATH,
            "A2A JSON-RPC 2.0: send, stream, get, cancel, resubscribe, list tasks (see docs/a2a.md)",
            "a2a",
            request_raw={
                "required": True,
                "content": {"application/json": {"schema": {"type": ["object", "array"]}}},
            },
            responses_raw={
                "200": {
                    "description": "A JSON-RPC response (or array for a batch); streaming methods answer "
                    "text/event-stream, one JSON-RPC response per data line",
                    "content": {"application/json": {}, "text/event-stream": {}},
                },
                "204": {"description": "Only notifications were sent: nothing to answer"},
            },
            description="Methods: " + ", ".join(METHODS),
            error_model=JsonRpcHttpError,
        ),
        a2a_endpoint,
    )

"""Conversations and messages of the task API: a message starts a background task.

Every route exists unscoped (the user's default workspace) and under
``/api/v1/workspaces/{workspace_id}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.rest.workspaces import workspace_of
from api.web.http import MAX_MESSAGE_CHARS, json_model, parse_body
from api.web.keys import CONVERSATIONS, TASK_STARTER, TASKS, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.engine.run_modes import RunModeName
from runtime.errors import ConflictError
from runtime.tasks.conversations import ConversationRecord
from runtime.tasks.requests import TaskRequest

__all__ = ["setup_conversation_routes"]


class ConversationCreated(BaseModel):
    success: bool = True
    conversation_id: str
    workspace_id: str
    created_at: float


class ConversationList(BaseModel):
    success: bool = True
    conversations: list[ConversationRecord]


class ConversationDetail(ConversationRecord):
    messages: list[dict[str, Any]] = Field(description="The full history: user, assistant and tool messages.")


class ConversationResponse(BaseModel):
    success: bool = True
    conversation: ConversationDetail


class Deleted(BaseModel):
    success: bool = True


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str | None = Field(
        None, max_length=100, description="Conversation to continue; omitted: a new one is created."
    )
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, strict=True)
    run_mode: RunModeName = Field("fast", description="fast | thinking | deep (see the README).")
    model_key: str | None = Field(None, max_length=64, description="A key from GET /api/v1/models.")
    max_iterations: int = Field(100, ge=1, le=500, strict=True, description="Most model calls in the task.")
    prompt_name: str | None = Field(
        None, max_length=64, description="A saved prompt replacing the system prompt."
    )
    personalization: str | None = Field(
        None, max_length=64, description="A saved personalization; default: the one named 'default'."
    )


class MessageAccepted(BaseModel):
    success: bool = True
    task_id: str
    conversation_id: str
    status: str = Field(description="running, or pending when the worker's running-task cap is reached.")
    created_at: float


async def create_conversation(request: web.Request) -> web.Response:
    workspace_id = await workspace_of(request)
    record = await request.app[CONVERSATIONS].create(request[USER], workspace_id)
    return json_model(
        ConversationCreated(
            conversation_id=record.conversation_id, workspace_id=workspace_id, created_at=record.created_at
        )
    )


async def list_conversations(request: web.Request) -> web.Response:
    workspace_id = await workspace_of(request)
    items = await request.app[CONVERSATIONS].in_workspace(request[USER], workspace_id)
    return json_model(ConversationList(conversations=items))


async def get_conversation(request: web.Request) -> web.Response:
    workspace_id = await workspace_of(request)
    conversations = request.app[CONVERSATIONS]
    record = await conversations.get(request[USER], workspace_id, request.match_info["conversation_id"])
    messages = await conversations.history(record.conversation_id)
    return json_model(
        ConversationResponse(conversation=ConversationDetail(**record.model_dump(), messages=messages))
    )


async def delete_conversation(request: web.Request) -> web.Response:
    workspace_id = await workspace_of(request)
    conversation_id = request.match_info["conversation_id"]
    await request.app[CONVERSATIONS].get(request[USER], workspace_id, conversation_id)
    if await request.app[TASKS].conversation_busy(conversation_id):
        raise ConflictError(f"conversation {conversation_id} has a running task; cancel it first")
    await request.app[CONVERSATIONS].delete(request[USER], workspace_id, conversation_id)
    return json_model(Deleted())


async def send_message(request: web.Request) -> web.Response:
    workspace_id = await workspace_of(request)
    body = await parse_body(request, MessageRequest)
    started = await request.app[TASK_STARTER].start(
        TaskRequest(owner=request[USER], workspace_id=workspace_id, **body.model_dump())
    )
    record = started.record
    return json_model(
        MessageAccepted(
            task_id=record.id,
            conversation_id=started.conversation_id,
            status=record.status,
            created_at=record.created_at,
        ),
        status=202,
    )


def setup_conversation_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    router = app.router
    tag = "conversations"
    registry.add_scoped(
        router,
        Operation(
            "POST",
            "/conversations",
            "Create a conversation",
            tag,
            response=ConversationCreated,
            errors=(404,),
        ),
        create_conversation,
    )
    registry.add_scoped(
        router,
        Operation(
            "GET",
            "/conversations",
            "List conversations, newest first",
            tag,
            response=ConversationList,
            errors=(404,),
        ),
        list_conversations,
    )
    registry.add_scoped(
        router,
        Operation(
            "GET",
            "/conversations/{conversation_id}",
            "A conversation with its full history",
            tag,
            response=ConversationResponse,
            errors=(404,),
        ),
        get_conversation,
    )
    registry.add_scoped(
        router,
        Operation(
            "DELETE",
            "/conversations/{conversation_id}",
            "Delete a conversation and its history",
            tag,
            response=Deleted,
            errors=(404, 409),
        ),
        delete_conversation,
    )
    registry.add_scoped(
        router,
        Operation(
            "POST",
            "/messages",
            "Send a message: starts a background task on the conversation",
            "tasks",
            request=MessageRequest,
            response=MessageAccepted,
            status=202,
            errors=(404, 409, 503),
            description="Follow the task with GET /api/v1/tasks/{task_id}?from=N (or its /events SSE "
            "stream). One active task per user by default: a second message gets 409.",
        ),
        send_message,
    )

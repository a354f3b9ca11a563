"""``POST /chat``: one synchronous agent run, answered with its whole log.

The response is built from the run's stored event log, the same stream every other surface reads.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.web.http import MAX_MESSAGE_CHARS, json_model, parse_body
from api.web.keys import CHAT_RUNNER, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.engine.events import Event, ModelResponse, ToolCall, ToolResult, Usage

__all__ = ["ChatRequest", "ChatResponse", "chat_logs", "setup_chat_routes"]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, strict=True, description="The task.")
    max_iterations: int = Field(10, ge=1, le=20, strict=True, description="Most model calls in the run.")


class ToolCallInfo(BaseModel):
    id: str
    name: str
    arguments: str


class ModelLogEntry(BaseModel):
    iteration: int
    response: dict[str, Any] = Field(description="{content, tool_calls, finish_reason, usage}")


class ToolLogEntry(BaseModel):
    iteration: int
    tool_call: ToolCallInfo
    result: dict[str, Any] = Field(description="{success, stdout, stderr, returncode (bash)}")


class ChatResponse(BaseModel):
    id: str = Field(description="Run id (uuid4).")
    response: str = Field(description="The agent's final answer.")
    logs: list[ModelLogEntry | ToolLogEntry]
    usage: Usage
    iterations: int
    processing_time: float = Field(description="Seconds.")
    error: str | None


def _model_entry(event: ModelResponse) -> ModelLogEntry:
    tool_calls = (
        [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in event.tool_calls
        ]
        if event.tool_calls
        else None
    )
    return ModelLogEntry(
        iteration=event.iteration,
        response={
            "content": event.content,
            "tool_calls": tool_calls,
            "finish_reason": event.finish_reason,
            "usage": event.usage.model_dump(),
        },
    )


def _tool_result(result: ToolResult) -> dict[str, Any]:
    body: dict[str, Any] = {"success": result.success, "stdout": result.stdout, "stderr": result.stderr}
    if result.name == "execute_bash":
        body["returncode"] = result.returncode
    extras = {
        "error": result.error,
        "timed_out": result.timed_out,
        "oom_killed": result.oom_killed,
        "truncated_bytes": result.truncated_bytes,
    }
    body.update({key: value for key, value in extras.items() if value})
    return body


def chat_logs(events: list[Event]) -> list[ModelLogEntry | ToolLogEntry]:
    """The answer's two log shapes, in order: a model response, then each tool call with its result."""
    logs: list[ModelLogEntry | ToolLogEntry] = []
    calls: dict[str, ToolCall] = {}
    for event in events:
        if isinstance(event, ModelResponse):
            logs.append(_model_entry(event))
        elif isinstance(event, ToolCall):
            calls[event.id] = event
        elif isinstance(event, ToolResult):
            call = calls.pop(event.tool_call_id)
            logs.append(
                ToolLogEntry(
                    iteration=event.iteration,
                    tool_call=ToolCallInfo(id=call.id, name=call.name, arguments=call.arguments),
                    result=_tool_result(event),
                )
            )
    return logs


async def chat(request: web.Request) -> web.Response:
    body = await parse_body(request, ChatRequest)
    started = time.monotonic()
    run_id, outcome, events = await request.app[CHAT_RUNNER].run(
        request[USER], body.message, body.max_iterations
    )
    return json_model(
        ChatResponse(
            id=run_id,
            response=outcome.response,
            logs=chat_logs(events),
            usage=outcome.usage,
            iterations=outcome.iterations,
            processing_time=round(time.monotonic() - started, 4),
            error=outcome.error,
        )
    )


def setup_chat_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    registry.add(
        app.router,
        Operation(
            "POST",
            "/chat",
            "Run the agent on a message and wait for its answer",
            "chat",
            request=ChatRequest,
            response=ChatResponse,
            errors=(413,),
            description="Runs the agent loop to completion in an ephemeral sandbox. A failed run "
            "(model unreachable, max_iterations reached) is still a 200, with `error` set.",
        ),
        chat,
    )

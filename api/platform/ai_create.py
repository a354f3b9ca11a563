"""``POST /api/v1/tasks/ai-create``: a marketplace task drafted by the model, streamed as it is written.

The answer is ``text/event-stream``, one ``data: {json}`` line per event, each with a ``type``:

- ``text``: the model's reply text as it comes (``text``);
- ``draft``: the draft read from the reply and validated with ``POST /v1/tasks``'s body model;
- ``published`` (with ``publish: true``): the task as ``GET /v1/tasks/{id}`` shows it, budget in escrow;
- ``end``: the last line of a success, with ``task_id`` (null when not published);
- ``error``: the last line when anything fails once the stream has begun (no draft in the reply,
  an invalid one, the model server down, a publish refused), with ``code`` (the HTTP status the
  same failure has elsewhere) and ``message``.

A request refused before the stream begins (its body, its key) is an ordinary error answer in the
capability envelope (``{code, message, data, timestamp}``, timestamp in Unix seconds).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.capabilities.routes import EnvelopeError
from api.platform.tasks import PublishBody, Task, task_draft
from api.web.errors import register_envelope, status_of
from api.web.http import MAX_MESSAGE_CHARS, describe_validation_error, parse_body
from api.web.keys import MARKETPLACE, MODELS, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.errors import AgentWorkerError, ModelError
from runtime.platform.money import CreditsOut
from runtime.platform.task_drafting import DraftReplyError, write_draft

__all__ = ["PATH", "setup_ai_create_routes"]

log = structlog.get_logger(__name__)

PATH = "/api/v1/tasks/ai-create"
_INVALID_DRAFT = 422  # the model answered, but with no publishable task
_MODEL_FAILED = 502  # the model server, behind us, failed or stayed unreachable


class AiCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(
        min_length=1, max_length=MAX_MESSAGE_CHARS, description="The task in plain language (any language)."
    )
    publish: bool = Field(False, description="Publish the draft at once: its budget goes to escrow.")


class Draft(BaseModel):
    title: str
    description: str
    required_capabilities: list[str]
    budget: CreditsOut
    deadline: str | None = Field(description="ISO 8601, as the model wrote it.")
    assignee: str | None


class TextLine(BaseModel):
    type: Literal["text"] = "text"
    text: str


class DraftLine(BaseModel):
    type: Literal["draft"] = "draft"
    draft: Draft


class PublishedLine(BaseModel):
    type: Literal["published"] = "published"
    task_id: str
    task: Task


class EndLine(BaseModel):
    type: Literal["end"] = "end"
    task_id: str | None = Field(description="The published task's id; null when not published.")


class ErrorLine(BaseModel):
    type: Literal["error"] = "error"
    code: int = Field(
        description="422: the reply holds no valid draft; 502: the model server failed; else the status "
        "the same refusal has on POST /v1/tasks (400, 409: the budget is over your balance)."
    )
    message: str


def _draft_out(body: PublishBody, raw: dict[str, Any]) -> Draft:
    deadline = raw.get("deadline")
    return Draft(
        title=body.title,
        description=body.description,
        required_capabilities=body.required_capabilities,
        budget=body.budget,
        deadline=deadline if isinstance(deadline, str) else None,
        assignee=body.assignee,
    )


def _code(error: AgentWorkerError) -> int:
    if isinstance(error, DraftReplyError):
        return _INVALID_DRAFT
    if isinstance(error, ModelError):
        return _MODEL_FAILED
    return status_of(error)


async def _send(response: web.StreamResponse, line: BaseModel) -> None:
    await response.write(f"data: {line.model_dump_json()}\n\n".encode())


async def ai_create(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, AiCreateBody)
    user, model = request[USER], request.app[MODELS].get(None)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)

    async def on_text(text: str) -> None:
        await _send(response, TextLine(text=text))

    try:
        raw = await write_draft(model, body.description, time.time(), on_text)
        try:
            draft = PublishBody.model_validate(raw)
        except ValidationError as e:
            await _send(
                response,
                ErrorLine(
                    code=_INVALID_DRAFT,
                    message=f"the model's draft is not a valid task: {describe_validation_error(e)}",
                ),
            )
            return response
        await _send(response, DraftLine(draft=_draft_out(draft, raw)))
        task_id = None
        if body.publish:
            row = await request.app[MARKETPLACE].publish(user, task_draft(draft))
            task_id = row.id
            await _send(response, PublishedLine(task_id=row.id, task=Task.of(row)))
        await _send(response, EndLine(task_id=task_id))
    except AgentWorkerError as e:  # no draft in the reply, the model server failed, publish refused
        await _send(response, ErrorLine(code=_code(e), message=str(e)))
    except ConnectionResetError:  # the client left; a task published before that stays published
        log.info("ai_create_client_gone", user=user)
    except Exception:
        # The headers are out: a failure of ours can only be told in the stream, never as a 500.
        log.exception("ai_create_failed", user=user)
        await _send(response, ErrorLine(code=500, message="internal error; see the worker log"))
    return response


def _render_error(status: int, reason: str) -> dict[str, object]:
    return EnvelopeError(code=status, message=reason, timestamp=int(time.time())).model_dump()


def setup_ai_create_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    register_envelope(app, PATH, _render_error)
    lines = (TextLine, DraftLine, PublishedLine, EndLine, ErrorLine)
    schema = {"oneOf": [line.model_json_schema(mode="serialization") for line in lines]}
    registry.add(
        app.router,
        Operation(
            "POST",
            PATH,
            "Draft a marketplace task from a plain-language description with the model (streamed)",
            "tasks",
            request=AiCreateBody,
            errors=(400,),
            error_model=EnvelopeError,
            responses_raw={
                "200": {
                    "description": "text/event-stream of `data: {json}` lines: text..., draft, "
                    "[published], end; or an error line last",
                    "content": {"text/event-stream": {"schema": schema}},
                }
            },
            description="The model's reply is read as one JSON object and validated with POST /v1/tasks's "
            "body. With publish: true the draft is published (budget held in escrow) and the last lines "
            "carry its task_id. A reply that is no valid draft ends with an error line (code 422).",
        ),
        ai_create,
    )

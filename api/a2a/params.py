"""What A2A callers send: the params of each method, in every dialect, and A2A's error codes.

Params are lenient, as A2A asks (unknown fields are ignored) and accept both dialects' spellings:
a text part is ``{"text"}`` (1.0), ``{"kind": "text", "text"}`` (0.3) or ``{"type": "text",
"text"}`` (the flat dialect's era); a data part's JSON becomes text; other parts (files, URLs, bytes) are
refused with A2A's ContentTypeNotSupported.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.web.http import MAX_INT, describe_validation_error
from api.web.jsonrpc import INVALID_PARAMS, RpcError

__all__ = [
    "CONTENT_TYPE_NOT_SUPPORTED",
    "TASK_NOT_CANCELABLE",
    "TASK_NOT_FOUND",
    "UNSUPPORTED_OPERATION",
    "VERSION_NOT_SUPPORTED",
    "ListParams",
    "SendParams",
    "TaskParams",
    "parse_params",
]

TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
UNSUPPORTED_OPERATION = -32004
CONTENT_TYPE_NOT_SUPPORTED = -32005
VERSION_NOT_SUPPORTED = -32009

P = TypeVar("P", bound=BaseModel)


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Part(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str | None = None
    data: Any = None


class Message(_Params):
    message_id: str | None = Field(None, alias="messageId")
    context_id: str | None = Field(None, alias="contextId")
    task_id: str | None = Field(None, alias="taskId")
    parts: list[Part] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def text(self) -> str:
        """The text parts (and data parts as JSON), one per line."""
        pieces = []
        for part in self.parts:
            if part.text is not None:
                pieces.append(part.text)
            elif part.data is not None:
                pieces.append(json.dumps(part.data, ensure_ascii=False))
            else:
                raise RpcError(
                    CONTENT_TYPE_NOT_SUPPORTED,
                    "only text and data parts are supported; files and URLs are not",
                )
        return "\n".join(pieces)


class SendConfiguration(_Params):
    blocking: bool | None = None  # 0.3; unset: blocking
    return_immediately: bool | None = Field(None, alias="returnImmediately")  # 1.0; unset: blocking
    history_length: int | None = Field(None, ge=0, le=MAX_INT, alias="historyLength")


class SendParams(_Params):
    message: Message | None = None
    configuration: SendConfiguration | None = None
    metadata: dict[str, Any] | None = None
    id: str | None = Field(
        None, max_length=100, description="The flat dialect's tasks/sendSubscribe: a task to follow."
    )
    capability_id: str | None = Field(None, max_length=64, description="Flat dialect: the capability to run.")
    context_id: str | None = Field(None, description="The flat dialect's spelling of contextId.")

    def capability(self) -> str | None:
        """The flat dialect's ``capability_id``, else ``metadata.capability_id`` of the params or the message."""
        for metadata in (self.metadata, self.message.metadata if self.message else None):
            if metadata and isinstance(metadata.get("capability_id"), str):
                return str(metadata["capability_id"])
        return self.capability_id

    def blocks(self) -> bool:
        """A2A's default: the answer waits for the task to end, unless the caller asked otherwise."""
        config = self.configuration
        return config is None or not (config.blocking is False or config.return_immediately)

    def history_length(self) -> int | None:
        return self.configuration.history_length if self.configuration else None


class TaskParams(_Params):
    id: str = Field(min_length=1, max_length=100)
    history_length: int | None = Field(None, ge=0, le=MAX_INT, alias="historyLength")


class ListParams(_Params):
    context_id: str | None = Field(None, alias="contextId")
    status: str | None = Field(None, description="A TaskState, e.g. TASK_STATE_WORKING.")
    page_size: int = Field(50, ge=1, le=100, alias="pageSize")
    page_token: str = Field("", alias="pageToken")
    history_length: int | None = Field(None, ge=0, le=MAX_INT, alias="historyLength")
    status_timestamp_after: datetime | None = Field(None, alias="statusTimestampAfter")
    include_artifacts: bool = Field(False, alias="includeArtifacts")

    def offset(self) -> int:
        if not self.page_token:
            return 0
        token = self.page_token
        # str.isdigit also passes digits int() refuses ("²"); the bound keeps SQLite's OFFSET in range.
        if (
            not (token.isascii() and token.isdigit() and len(token) <= len(str(MAX_INT)))
            or int(token) > MAX_INT
        ):
            raise RpcError(INVALID_PARAMS, "pageToken is not one this server issued")
        return int(token)


def parse_params(model: type[P], params: dict[str, Any]) -> P:
    try:
        return model.model_validate(params)
    except ValidationError as e:
        raise RpcError(INVALID_PARAMS, f"invalid params: {describe_validation_error(e)}") from None

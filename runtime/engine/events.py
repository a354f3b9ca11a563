"""The typed events an agent run emits.

Every step of a run is one event, appended to the store in order. Every surface (``/chat``, task
polling, SSE, A2A, MCP) reads this one stream and shapes it for its protocol, so the events carry
everything a surface needs and nothing surface-specific.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "FINAL_EVENT_TYPES",
    "Event",
    "IterationStarted",
    "ModelResponse",
    "ReasoningChunk",
    "RunCanceled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "StatusChanged",
    "TextChunk",
    "ToolCall",
    "ToolCallRequest",
    "ToolOutput",
    "ToolResult",
    "Usage",
    "WorkspaceMoved",
    "event_adapter",
]


class Usage(BaseModel):
    """Token counts as the model server reported them (zeros when it reported none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ToolCallRequest(BaseModel):
    """A tool call exactly as the model asked for it; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    message: str
    max_iterations: int
    model: str


class IterationStarted(_Event):
    type: Literal["iteration_started"] = "iteration_started"
    iteration: int


class TextChunk(_Event):
    """A piece of the model's answer, as it streams."""

    type: Literal["text_chunk"] = "text_chunk"
    iteration: int
    content: str


class ReasoningChunk(_Event):
    """A piece of the model's reasoning, for servers that stream it separately."""

    type: Literal["reasoning_chunk"] = "reasoning_chunk"
    iteration: int
    content: str


class ModelResponse(_Event):
    """One finished model call."""

    type: Literal["model_response"] = "model_response"
    iteration: int
    content: str
    tool_calls: list[ToolCallRequest] | None
    finish_reason: str
    usage: Usage
    duration: float = Field(description="Seconds the model call took, retries included.")


class ToolCall(_Event):
    type: Literal["tool_call"] = "tool_call"
    iteration: int
    id: str
    name: str
    arguments: str


class ToolOutput(_Event):
    """Output of a running tool call, as it is produced: coalesced, and only up to the head cap."""

    type: Literal["tool_output"] = "tool_output"
    iteration: int
    tool_call_id: str
    stream: Literal["stdout", "stderr"]
    content: str


class ToolResult(_Event):
    type: Literal["tool_result"] = "tool_result"
    iteration: int
    tool_call_id: str
    name: str
    success: bool
    stdout: str
    stderr: str
    returncode: int | None = Field(description="Exit code; None when the call never ran or was killed.")
    timed_out: bool = False
    oom_killed: bool = False
    state_lost: bool = Field(
        False, description="execute_python: the conversation's interpreter was restarted; its state is gone."
    )
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    truncated_bytes: int = Field(0, description="Output bytes cut from the middle of stdout + stderr.")
    duration: float = 0.0
    error: str | None = Field(None, description="Why the call did not run (bad arguments, unknown tool).")


class RunCompleted(_Event):
    type: Literal["run_completed"] = "run_completed"
    response: str
    iterations: int
    usage: Usage


class RunFailed(_Event):
    type: Literal["run_failed"] = "run_failed"
    error: str
    response: str
    iterations: int
    usage: Usage


class RunCanceled(_Event):
    type: Literal["run_canceled"] = "run_canceled"
    reason: str
    response: str = ""
    iterations: int = 0


class StatusChanged(_Event):
    """The task moved from ``pending`` (queued behind the global cap) to ``running``."""

    type: Literal["status_changed"] = "status_changed"
    status: str


class WorkspaceMoved(_Event):
    """The task's workspace was placed on another Docker engine: the one it was on went away.

    Its sandbox starts on ``engine`` without what ``lost_volume`` held (with several engines,
    ``AGENT_DOCKER_HOSTS``; docs/deploy.md).
    """

    type: Literal["workspace_moved"] = "workspace_moved"
    engine: str
    lost_engine: str
    lost_volume: str | None  # None: the files were a host directory, still there
    reason: str


Event = Annotated[
    RunStarted
    | IterationStarted
    | TextChunk
    | ReasoningChunk
    | ModelResponse
    | ToolCall
    | ToolOutput
    | ToolResult
    | RunCompleted
    | RunFailed
    | RunCanceled
    | StatusChanged
    | WorkspaceMoved,
    Field(discriminator="type"),
]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)

FINAL_EVENT_TYPES = frozenset({"run_completed", "run_failed", "run_canceled"})

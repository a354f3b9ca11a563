"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

An iteration is one model call plus the tool calls it asked for. Each step is emitted as a typed
event to an :class:`EventSink`; the loop keeps no other record. Model-caused problems are tool
results; :class:`~runtime.errors.RunError` and failures of our own end the run with a
``run_failed`` event. Cancellation is not caught: the caller decides what a canceled run records.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, Field

from runtime.engine.events import (
    Event,
    IterationStarted,
    ModelResponse,
    ReasoningChunk,
    RunCompleted,
    RunFailed,
    TextChunk,
    ToolCall,
    ToolCallRequest,
    ToolResult,
    Usage,
)
from runtime.engine.model_client import ChatModel, DeltaKind, ModelRequest, ModelTurn
from runtime.engine.tool_output import ToolOutputStream
from runtime.engine.tools import (
    SandboxSource,
    ToolConfig,
    execute_tool_call,
    history_arguments,
    render_for_model,
    tool_schemas,
)
from runtime.errors import IterationLimitError, RunError
from runtime.telemetry import RunObserver

__all__ = ["DEFAULT_SYSTEM_PROMPT", "EventSink", "LoopConfig", "RunOutcome", "run_agent"]

log = structlog.get_logger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are a capable assistant with a Linux sandbox. Use execute_bash to run shell commands and "
    "execute_python to run Python code; the working directory is /workspace and there is no network "
    "access. Check results before you rely on them, and reply with a concise final answer when done."
)


class LoopConfig(BaseModel):
    """What shapes every run of the loop."""

    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description="System message put before the user's.")
    tools: ToolConfig = Field(default_factory=ToolConfig)
    reasoning_effort: str | None = Field(None, description="Sent with each model call when set.")


class EventSink(Protocol):
    async def emit(self, event: Event) -> None: ...


class PrefetchingSandboxSource(SandboxSource, Protocol):
    """A :class:`SandboxSource` the loop can start early (:class:`runtime.engine.runs.LazySandbox`)."""

    def prefetch(self) -> None:
        """Start getting the sandbox in the background; the next call returns it."""


class RunOutcome(BaseModel):
    response: str
    iterations: int
    usage: Usage
    error: str | None = None
    messages: list[dict[str, Any]] = Field(description="The conversation, including what this run added.")


async def run_agent(
    messages: list[dict[str, Any]],
    *,
    model: ChatModel,
    get_sandbox: PrefetchingSandboxSource,
    config: LoopConfig,
    max_iterations: int,
    sink: EventSink,
    observer: RunObserver | None = None,
) -> RunOutcome:
    """Run the loop on ``messages`` (system and user messages included) until a final answer.

    ``observer`` (from :meth:`runtime.telemetry.Telemetry.run`) gets the iterations, the tool calls
    and how the run ended.
    """
    run = observer if observer is not None else RunObserver.unobserved()
    messages = list(messages)
    schemas = tool_schemas(config.tools.allowed)
    usage = Usage()
    response = ""
    iteration = 0
    try:
        while True:
            if iteration >= max_iterations:
                raise IterationLimitError(
                    f"max_iterations ({max_iterations}) reached before the model gave a final answer"
                )
            iteration += 1
            await sink.emit(IterationStarted(iteration=iteration))
            run.iteration(iteration)
            turn, model_duration = await _model_step(
                model, messages, iteration, sink, config.reasoning_effort, schemas, get_sandbox
            )
            usage += turn.usage
            response = turn.content
            tools = await _tool_step(
                turn.tool_calls, messages, iteration, get_sandbox, config.tools, sink, run
            )
            # The canonical log line of an iteration: tokens, tools and durations together.
            log.info(
                "iteration",
                iteration=iteration,
                prompt_tokens=turn.usage.prompt_tokens,
                completion_tokens=turn.usage.completion_tokens,
                finish_reason=turn.finish_reason,
                model_duration=round(model_duration, 4),
                tools=tools,
            )
            if not turn.tool_calls:
                run.ended(iteration, None)
                await sink.emit(RunCompleted(response=response, iterations=iteration, usage=usage))
                return RunOutcome(response=response, iterations=iteration, usage=usage, messages=messages)
    except RunError as e:
        error = str(e)
    except Exception as e:  # our own failure (sandbox, store): end this run, keep the worker up
        log.exception("run_internal_error", iteration=iteration)
        error = f"internal error: {type(e).__name__}: {e}"
    run.ended(iteration, error)
    await sink.emit(RunFailed(error=error, response=response, iterations=iteration, usage=usage))
    return RunOutcome(response=response, iterations=iteration, usage=usage, error=error, messages=messages)


async def _model_step(
    model: ChatModel,
    messages: list[dict[str, Any]],
    iteration: int,
    sink: EventSink,
    reasoning_effort: str | None,
    tools: list[dict[str, Any]],
    sandbox: PrefetchingSandboxSource,
) -> tuple[ModelTurn, float]:
    offered = {tool["function"]["name"] for tool in tools}

    async def on_delta(kind: DeltaKind, text: str) -> None:
        if kind == "tool_call":
            # The sandbox starts (or is claimed) while the model still streams the arguments.
            if text in offered:
                sandbox.prefetch()
            return
        chunk = TextChunk if kind == "text" else ReasoningChunk
        await sink.emit(chunk(iteration=iteration, content=text))

    started = time.monotonic()
    turn = await model.complete(ModelRequest(messages, tools, on_delta, reasoning_effort))
    duration = time.monotonic() - started
    await sink.emit(
        ModelResponse(
            iteration=iteration,
            content=turn.content,
            tool_calls=turn.tool_calls or None,
            finish_reason=turn.finish_reason,
            usage=turn.usage,
            duration=round(duration, 4),
        )
    )
    assistant: dict[str, Any] = {"role": "assistant", "content": turn.content}
    if turn.tool_calls:
        assistant["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": history_arguments(c.arguments)},
            }
            for c in turn.tool_calls
        ]
    messages.append(assistant)
    return turn, duration


async def _tool_step(
    calls: list[ToolCallRequest],
    messages: list[dict[str, Any]],
    iteration: int,
    get_sandbox: PrefetchingSandboxSource,
    config: ToolConfig,
    sink: EventSink,
    run: RunObserver,
) -> list[dict[str, Any]]:
    """Run each call in order; returns a summary per call for the iteration's log line."""
    summaries: list[dict[str, Any]] = []
    for call in calls:
        await sink.emit(ToolCall(iteration=iteration, id=call.id, name=call.name, arguments=call.arguments))
        with run.tool_call(call.name, call.id) as observed:
            async with ToolOutputStream(sink.emit, iteration, call.id, config.output_limit) as output:
                outcome = await execute_tool_call(
                    call.name, call.arguments, get_sandbox, config, output.write
                )
            observed.result(outcome)
        await sink.emit(
            ToolResult(
                iteration=iteration,
                tool_call_id=call.id,
                name=call.name,
                **outcome.model_dump(exclude={"timeout"}),
            )
        )
        summaries.append(
            {
                "tool": call.name,
                "returncode": outcome.returncode,
                "timed_out": outcome.timed_out,
                "rejected": outcome.error is not None,
                "duration": round(outcome.duration, 4),
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": render_for_model(outcome)})
    return summaries

"""The chat-model seam and its OpenAI-compatible implementation.

:class:`OpenAIChatModel` streams completions from any server that speaks the Chat Completions
wire format (OpenAI, vLLM, Ollama, llama.cpp) and tolerates their known differences: no
``stream_options`` support, tool-call arguments sent as an object, empty or null deltas, reasoning
sent as ``reasoning_content`` or ``reasoning``. Retries are ours (the SDK's are off) so that only
429, 5xx and connection errors are retried, never another 4xx, and ``Retry-After`` is honoured.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import openai
import structlog
from pydantic import BaseModel, Field

from runtime.engine.events import ToolCallRequest, Usage
from runtime.errors import ModelError

__all__ = ["ChatModel", "DeltaHandler", "ModelConfig", "ModelRequest", "ModelTurn", "OpenAIChatModel"]

log = structlog.get_logger(__name__)

# "tool_call": the stream has begun a tool call (its text is the tool's name), before its arguments.
DeltaKind = Literal["text", "reasoning", "tool_call"]
DeltaHandler = Callable[[DeltaKind, str], Awaitable[None]]


class ModelConfig(BaseModel):
    """How to reach one OpenAI-compatible model."""

    base_url: str | None = Field(
        None, description="API base URL, e.g. http://localhost:8000/v1; None = OpenAI."
    )
    api_key: str = Field("not-needed", description="API key; local servers usually accept anything.")
    model: str = Field("gpt-4o-mini", description="Model name sent with every request.")
    request_timeout: float = Field(120.0, gt=0, description="Seconds allowed for one model call.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries on 429, 5xx and connection errors.")
    retry_base_delay: float = Field(0.5, ge=0, description="First backoff delay; doubles per retry.")
    retry_max_delay: float = Field(30.0, ge=0, description="Cap on one backoff delay, Retry-After included.")
    reasoning_effort: str | None = Field(None, description="Sent as reasoning_effort when set.")


@dataclass(frozen=True)
class ModelRequest:
    """What one model call is asked, and where its streamed deltas go.

    One value rather than a list of parameters, so that every :class:`ChatModel` (the client, the
    telemetry wrapper, a bench's in-process model) takes it the same way and a new one is added once.
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    on_delta: DeltaHandler | None = None
    reasoning_effort: str | None = None  # overrides the configured one for this call


class ModelTurn(BaseModel):
    """One completed model call."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)


class ChatModel(Protocol):
    """What the agent loop needs from a model."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: ModelRequest) -> ModelTurn: ...


class _PartialStream(Exception):
    """The stream broke after deltas were delivered; retrying would repeat them."""


class OpenAIChatModel:
    """A :class:`ChatModel` over ``openai.AsyncOpenAI``; close it with :meth:`aclose`."""

    def __init__(self, config: ModelConfig) -> None:
        self._config = config
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=config.request_timeout, max_retries=0
        )
        self._stream_options = True
        self._effort_ok = True  # servers that refuse reasoning_effort are asked without it from then on

    @property
    def name(self) -> str:
        return self._config.model

    async def aclose(self) -> None:
        await self._client.close()

    async def problem(self, timeout: float) -> str | None:
        """Why the server does not answer its models list within ``timeout`` s (None when it does).

        The readiness probe's question: one request, no retries. The answer names the failure's
        kind, never the server's text or URL (the probe is public).
        """
        try:
            async with asyncio.timeout(timeout):
                await self._client.with_options(timeout=timeout, max_retries=0).models.list()
        except (TimeoutError, openai.APITimeoutError):
            return f"no answer within {timeout:g} s"
        except openai.APIStatusError as e:
            return f"answered {e.status_code}"
        except openai.APIConnectionError:
            return "unreachable"
        return None

    async def complete(self, request: ModelRequest) -> ModelTurn:
        """One model call, streamed."""
        effort = request.reasoning_effort or self._config.reasoning_effort
        attempt = 0
        while True:
            try:
                return await self._stream_once(request, effort if self._effort_ok else None)
            except openai.APIStatusError as e:
                if self._stream_options and _rejects_param(e, "stream_options"):
                    log.info("model_stream_options_unsupported", status=e.status_code)
                    self._stream_options = False
                    continue
                if effort and self._effort_ok and _rejects_param(e, "reasoning_effort"):
                    log.info("model_reasoning_effort_unsupported", status=e.status_code)
                    self._effort_ok = False
                    continue
                if not (e.status_code == 429 or e.status_code >= 500) or attempt >= self._config.max_retries:
                    raise ModelError(_describe(e)) from e
                asked = _retry_after(e.response)  # "Retry-After: 0" means now, not "use the backoff"
                delay = asked if asked is not None else self._backoff(attempt)
            except openai.APIConnectionError as e:  # includes timeouts
                if attempt >= self._config.max_retries:
                    raise ModelError(f"model server unreachable after {attempt + 1} attempts: {e}") from e
                delay = self._backoff(attempt)
            except _PartialStream as e:
                raise ModelError(f"model stream broke mid-answer: {e.__cause__}") from e
            delay = min(delay, self._config.retry_max_delay)
            attempt += 1
            log.warning("model_retry", attempt=attempt, delay=round(delay, 3))
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        base = self._config.retry_base_delay * (2**attempt)
        return base * (0.5 + random.random() / 2)  # jitter spreads retries of concurrent runs

    async def _stream_once(self, request: ModelRequest, reasoning_effort: str | None) -> ModelTurn:
        kwargs: dict[str, Any] = {"model": self._config.model, "messages": request.messages, "stream": True}
        if request.tools:
            kwargs["tools"] = request.tools
        if self._stream_options:
            kwargs["stream_options"] = {"include_usage": True}
        if reasoning_effort:
            kwargs["reasoning_effort"] = reasoning_effort
        stream = await self._client.chat.completions.create(**kwargs)
        acc = _TurnAccumulator()
        delivered = False
        try:
            async with stream:
                async for chunk in stream:
                    for kind, text in acc.add(chunk):
                        if request.on_delta is not None:
                            await request.on_delta(kind, text)
                        delivered = delivered or kind != "tool_call"  # a retry repeats no event
        except (openai.APIConnectionError, openai.APIStatusError) as e:
            if delivered:
                raise _PartialStream() from e
            raise
        return acc.result()


class _TurnAccumulator:
    """Folds stream chunks into a :class:`ModelTurn`, tolerating server quirks."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage = Usage()

    def add(self, chunk: Any) -> list[tuple[DeltaKind, str]]:
        out: list[tuple[DeltaKind, str]] = []
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                total_tokens=getattr(usage, "total_tokens", 0) or 0,
            )
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "finish_reason", None):
                self._finish = choice.finish_reason
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            reasoning = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
            if isinstance(reasoning, str) and reasoning:
                self._reasoning.append(reasoning)
                out.append(("reasoning", reasoning))
            if isinstance(delta.content, str) and delta.content:
                self._content.append(delta.content)
                out.append(("text", delta.content))
            for position, call in enumerate(getattr(delta, "tool_calls", None) or []):
                if name := self._add_call(position, call):
                    out.append(("tool_call", name))
        return out

    def _add_call(self, position: int, call: Any) -> str | None:
        """Fold one tool-call delta in; the call's name when this delta is the first to give it."""
        index = getattr(call, "index", None)
        if index is None:  # some servers omit the index; match by id, else by position
            call_id = getattr(call, "id", None)
            matches = [i for i, c in self._calls.items() if call_id and c["id"] == call_id]
            index = matches[0] if matches else position
        slot = self._calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
        if getattr(call, "id", None):
            slot["id"] = call.id
        function = getattr(call, "function", None)
        if function is None:
            return None
        name = getattr(function, "name", None)
        first = bool(name) and not slot["name"]  # some servers repeat the name in every delta
        if first:
            slot["name"] = name
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, dict):  # Ollama sends an object, in one piece
            slot["arguments"] = json.dumps(arguments)
        elif isinstance(arguments, str):
            slot["arguments"] += arguments
        return name if first else None

    def result(self) -> ModelTurn:
        calls = [
            ToolCallRequest(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
            for i, c in sorted(self._calls.items())
        ]
        finish = self._finish or ("tool_calls" if calls else "stop")
        return ModelTurn(
            content="".join(self._content),
            reasoning="".join(self._reasoning),
            tool_calls=calls,
            finish_reason=finish,
            usage=self._usage,
        )


def _rejects_param(e: openai.APIStatusError, name: str) -> bool:
    return e.status_code in (400, 422) and name in (str(e.body) + str(e.message))


def _retry_after(response: Any) -> float | None:
    """Seconds from ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``; None if absent."""
    headers = getattr(response, "headers", None) or {}
    try:
        if ms := headers.get("retry-after-ms"):
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _describe(e: openai.APIStatusError) -> str:
    detail = e.message
    if isinstance(e.body, dict) and isinstance(e.body.get("message"), str):
        detail = e.body["message"]
    return f"model server returned {e.status_code}: {detail}"

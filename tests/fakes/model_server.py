"""A scripted OpenAI-compatible Chat Completions server, so tests never call a real model.

It is a real aiohttp server (on 127.0.0.1 by default) speaking the real wire format (a ``chat.completion``
JSON body, or SSE ``chat.completion.chunk`` frames when ``stream`` is true), so the real
``openai`` client is exercised end to end. Each request to ``POST /v1/chat/completions``
consumes the next scripted turn::

    async with ScriptedModelServer() as server:
        server.extend([ToolCalls([Call("execute_bash", {"command": "echo hi"})]), Reply("done")])
        async with AsyncOpenAI(api_key="test", base_url=server.base_url, max_retries=0) as client:
            ...
        assert server.requests[1]["messages"][-1]["role"] == "tool"
        server.assert_script_consumed()
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, ValidationError

CREATED = 1_700_000_000  # a fixed timestamp keeps every response deterministic


# --- the script ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 10
    completion_tokens: int = 5

    def as_dict(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }


@dataclass(frozen=True)
class Reply:
    """Assistant text, optionally preceded by a reasoning stream."""

    content: str = ""
    reasoning: str | None = None
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    chunk_delay: float = 0.0  # seconds between streamed frames, to cancel mid-stream


@dataclass(frozen=True)
class Call:
    """One tool call. A ``str`` ``arguments`` is sent verbatim (e.g. invalid JSON); ``id`` defaults to ``call_<n>``."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    """One or more tool calls, optionally preceded by text and reasoning."""

    calls: list[Call]
    content: str | None = None
    reasoning: str | None = None
    finish_reason: str = "tool_calls"
    usage: Usage = field(default_factory=Usage)
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Error:
    """An HTTP error; ``body`` defaults to ``{"error": {"message", "type", "code"}}``."""

    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted error"
    code: str | None = None


@dataclass(frozen=True)
class Hang:
    """Sleep before answering; then answer with the next scripted turn (an empty Reply if none).

    A client that gives up during the sleep cancels the handler (and bumps ``server.disconnects``)
    without consuming the next turn, so a retry gets it.
    """

    seconds: float


Turn = Reply | ToolCalls | Error | Hang

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --- the request boundary ----------------------------------------------------------------------


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields the fake acts on; everything else is accepted and recorded as sent."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[dict[str, Any]]
    stream: bool = False
    stream_options: StreamOptions | None = None


# --- the server ---------------------------------------------------------------------------------


class ScriptedModelServer:
    """An OpenAI-compatible server answering from a script; see the module docstring.

    Quirk switches emulate self-hosted servers (vLLM, Ollama, llama.cpp):
    ``reject_stream_options`` (400 on any ``stream_options``), ``arguments_as_object`` (tool call
    ``function.arguments`` sent as a JSON object, in one delta), ``empty_deltas`` (noise frames
    with ``delta: {}``, ``delta: {"content": null}`` and ``choices: []``), ``omit_usage``, and
    ``reasoning_field`` (``"reasoning_content"``, or ``"reasoning"`` as newer vLLM/Ollama send).
    ``default`` answers every request that finds the script empty (a fuzzer's runs), instead of a 500.
    ``host`` is the address listened on: loopback unless a test's container must reach it (the
    deployment test binds the Docker bridge's gateway, never an outside interface).
    """

    def __init__(
        self,
        *,
        model: str = "scripted-model",
        api_key: str | None = None,
        chunk_chars: int = 4,
        reject_stream_options: bool = False,
        arguments_as_object: bool = False,
        empty_deltas: bool = False,
        omit_usage: bool = False,
        reasoning_field: str = "reasoning_content",
        default: Turn | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.model = model
        self.api_key = api_key
        self.chunk_chars = chunk_chars
        self.reject_stream_options = reject_stream_options
        self.arguments_as_object = arguments_as_object
        self.empty_deltas = empty_deltas
        self.omit_usage = omit_usage
        self.reasoning_field = reasoning_field
        self.default = default
        self.requests: list[dict[str, Any]] = []  # JSON bodies, in arrival order
        self.headers: list[CIMultiDict[str]] = []  # the matching request headers
        self.unscripted: list[int] = []  # indexes into `requests` that found the script empty
        self.disconnects = 0  # requests the client abandoned before the answer was complete
        self._script: deque[Turn] = deque()
        self._call_ids = itertools.count(1)  # call_1, call_2, ... across the whole script
        self._completion_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # script

    def add(self, turn: Turn) -> None:
        self._script.append(turn)

    def extend(self, turns: list[Turn]) -> None:
        self._script.extend(turns)

    @property
    def pending(self) -> list[Turn]:
        return list(self._script)

    def assert_script_consumed(self) -> None:
        problems = []
        if self._script:
            problems.append(f"{len(self._script)} scripted turn(s) never requested: {list(self._script)}")
        if self.unscripted:
            problems.append(f"request(s) {self.unscripted} arrived after the script ran out")
        if problems:
            raise AssertionError("; ".join(problems))

    # lifecycle

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # handlers

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": self.model, "object": "model", "created": CREATED, "owned_by": "scripted"}]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(error_body(400, "request body is not valid JSON"), status=400)
        self.requests.append(body)
        self.headers.append(CIMultiDict(request.headers))
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                error_body(401, "Incorrect API key provided", "invalid_api_key"), status=401
            )
        try:
            chat = ChatRequest.model_validate(body)
        except ValidationError as exc:
            return web.json_response(error_body(400, str(exc)), status=400)
        if self.reject_stream_options and "stream_options" in body:
            message = "Unrecognized request argument: stream_options"
            return web.json_response(error_body(400, message), status=400)
        if not self._script and self.default is not None:
            return await self._answer(request, chat, self.default)
        if not self._script:
            self.unscripted.append(len(self.requests) - 1)
            message = f"ScriptedModelServer: script ran out at request #{len(self.requests) - 1}"
            return web.json_response(error_body(500, message, "script_exhausted"), status=500)
        try:
            return await self._answer(request, chat, self._script.popleft())
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise

    async def _answer(self, request: web.Request, chat: ChatRequest, turn: Turn) -> web.StreamResponse:
        while isinstance(turn, Hang):
            await asyncio.sleep(turn.seconds)
            turn = self._script.popleft() if self._script else Reply()
        if isinstance(turn, Error):
            body = turn.body if turn.body is not None else error_body(turn.status, turn.message, turn.code)
            return web.json_response(body, status=turn.status, headers=turn.headers)
        calls = (
            [(c, c.id or f"call_{next(self._call_ids)}") for c in turn.calls]
            if isinstance(turn, ToolCalls)
            else []
        )
        head = {
            "id": f"chatcmpl-{next(self._completion_ids)}",
            "object": "chat.completion.chunk" if chat.stream else "chat.completion",
            "created": CREATED,
            "model": chat.model or self.model,
        }
        if chat.stream:
            include_usage = chat.stream_options is not None and chat.stream_options.include_usage
            return await self._stream(request, turn, calls, head, include_usage)
        return web.json_response(self._completion(turn, calls, head))

    def _completion(
        self, turn: Reply | ToolCalls, calls: list[tuple[Call, str]], head: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if turn.reasoning is not None:
            message[self.reasoning_field] = turn.reasoning
        if calls:
            message["tool_calls"] = [
                {
                    "id": id_,
                    "type": "function",
                    "function": {"name": call.name, "arguments": self._arguments(call)},
                }
                for call, id_ in calls
            ]
        choice = {"index": 0, "message": message, "finish_reason": turn.finish_reason, "logprobs": None}
        usage = {} if self.omit_usage else {"usage": turn.usage.as_dict()}
        return {**head, "choices": [choice], **usage}

    async def _stream(
        self,
        request: web.Request,
        turn: Reply | ToolCalls,
        calls: list[tuple[Call, str]],
        head: dict[str, Any],
        include_usage: bool,
    ) -> web.StreamResponse:
        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {**head, "choices": choices, **({"usage": None} if include_usage else {}), **extra}

        def delta(content: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return chunk([{"index": 0, "delta": content, "finish_reason": finish_reason, "logprobs": None}])

        frames = [delta(d) for d in self._deltas(turn, calls)]
        if self.empty_deltas:
            noise = [delta({}), delta({"content": None}), chunk([])]
            frames = [frame for real in frames for frame in (real, *noise)]
        frames.append(delta({}, turn.finish_reason))
        if include_usage and not self.omit_usage:
            frames.append(chunk([], usage=turn.usage.as_dict()))

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for index, frame in enumerate(frames):
            if index and turn.chunk_delay:
                await asyncio.sleep(turn.chunk_delay)
            await response.write(f"data: {json.dumps(frame)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _deltas(self, turn: Reply | ToolCalls, calls: list[tuple[Call, str]]) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{self.reasoning_field: piece} for piece in self._split(turn.reasoning or "")]
        deltas += [{"content": piece} for piece in self._split(turn.content or "")]
        for index, (call, id_) in enumerate(calls):
            # The id and name come first with empty arguments, then the arguments string in pieces;
            # with arguments_as_object the whole object rides in that first delta instead.
            arguments = self._arguments(call)
            pieces = [arguments] if isinstance(arguments, dict) else ["", *self._split(arguments)]
            function = {"name": call.name, "arguments": pieces[0]}
            deltas.append(
                {"tool_calls": [{"index": index, "id": id_, "type": "function", "function": function}]}
            )
            deltas += [{"tool_calls": [{"index": index, "function": {"arguments": p}}]} for p in pieces[1:]]
        return deltas

    def _arguments(self, call: Call) -> dict[str, Any] | str:
        if isinstance(call.arguments, str):
            return call.arguments
        return call.arguments if self.arguments_as_object else json.dumps(call.arguments)

    def _split(self, text: str) -> list[str]:
        return [text[i : i + self.chunk_chars] for i in range(0, len(text), self.chunk_chars)]

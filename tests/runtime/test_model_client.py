"""The OpenAI-compatible model client against the scripted model server: streaming, tool calls, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from runtime.engine.events import ToolCallRequest, Usage
from runtime.engine.model_client import DeltaKind, ModelConfig, ModelRequest, ModelTurn, OpenAIChatModel
from runtime.errors import ModelError
from tests.fakes import Call, Error, Hang, Reply, ScriptedModelServer, ToolCalls
from tests.fakes import Usage as ScriptedUsage

MESSAGES = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "execute_bash", "parameters": {"type": "object"}}}]
# Retries that waited their backoff would outlast this bound by far: the test then fails, not hangs.
GUARD = 10.0


@asynccontextmanager
async def model_for(server: ScriptedModelServer, **config: Any) -> AsyncIterator[OpenAIChatModel]:
    values: dict[str, Any] = {"base_url": server.base_url, "model": "scripted-model", "max_retries": 0}
    model = OpenAIChatModel(ModelConfig(**{**values, **config}))
    try:
        yield model
    finally:
        await model.aclose()


class Deltas:
    def __init__(self) -> None:
        self.seen: list[tuple[DeltaKind, str]] = []

    async def __call__(self, kind: DeltaKind, text: str) -> None:
        self.seen.append((kind, text))


async def complete(server: ScriptedModelServer, deltas: Deltas | None = None, **config: Any) -> ModelTurn:
    async with model_for(server, **config) as model:
        return await asyncio.wait_for(model.complete(ModelRequest(MESSAGES, TOOLS, deltas)), GUARD)


async def test_text_and_reasoning_stream_as_deltas_in_order() -> None:
    deltas = Deltas()
    async with ScriptedModelServer(chunk_chars=3) as server:
        server.add(Reply("hello world", reasoning="think", usage=ScriptedUsage(7, 4)))
        turn = await complete(server, deltas)
    assert deltas.seen == [
        ("reasoning", "thi"),
        ("reasoning", "nk"),
        ("text", "hel"),
        ("text", "lo "),
        ("text", "wor"),
        ("text", "ld"),
    ]
    assert turn == ModelTurn(
        content="hello world",
        reasoning="think",
        finish_reason="stop",
        usage=Usage(prompt_tokens=7, completion_tokens=4, total_tokens=11),
    )
    request = server.requests[0]
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert request["messages"] == MESSAGES and request["tools"] == TOOLS


async def test_tool_calls_are_assembled_from_their_pieces_and_announced_by_name_once() -> None:
    deltas = Deltas()
    calls = [
        Call("execute_bash", {"command": "echo one two three"}, id="a"),
        Call("execute_python", {"code": "print(2)"}, id="b"),
    ]
    async with ScriptedModelServer(chunk_chars=2) as server:
        server.add(ToolCalls(calls, content="Let me"))
        turn = await complete(server, deltas)
    assert turn.tool_calls == [
        ToolCallRequest(id="a", name="execute_bash", arguments='{"command": "echo one two three"}'),
        ToolCallRequest(id="b", name="execute_python", arguments='{"code": "print(2)"}'),
    ]
    assert (turn.content, turn.finish_reason) == ("Let me", "tool_calls")
    assert [d for d in deltas.seen if d[0] == "tool_call"] == [
        ("tool_call", "execute_bash"),
        ("tool_call", "execute_python"),
    ]


async def test_arguments_sent_as_an_object_become_json_text() -> None:
    async with ScriptedModelServer(arguments_as_object=True) as server:
        server.add(ToolCalls([Call("execute_bash", {"command": "ls"}, id="a")]))
        turn = await complete(server)
    assert turn.tool_calls == [ToolCallRequest(id="a", name="execute_bash", arguments='{"command": "ls"}')]


async def test_noise_deltas_and_missing_usage_are_tolerated() -> None:
    async with ScriptedModelServer(empty_deltas=True, omit_usage=True) as server:
        server.add(Reply("fine"))
        turn = await complete(server)
    assert (turn.content, turn.usage) == ("fine", Usage())


async def test_a_server_refusing_stream_options_is_asked_again_without_them() -> None:
    async with ScriptedModelServer(reject_stream_options=True) as server:
        server.extend([Reply("first"), Reply("second")])
        async with model_for(server) as model:
            assert (await model.complete(ModelRequest(MESSAGES))).content == "first"
            assert (await model.complete(ModelRequest(MESSAGES))).content == "second"
    # Refused once; from then on the client no longer sends them.
    assert ["stream_options" in r for r in server.requests] == [True, False, False]


@pytest.mark.parametrize(
    "error",
    [
        Error(429, headers={"Retry-After": "0"}),
        Error(429, headers={"retry-after-ms": "10"}),
        Error(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # a date already past
        Error(503, headers={"Retry-After": "0"}),
    ],
    ids=["429-seconds", "429-ms", "429-date", "503-seconds"],
)
async def test_rate_limits_and_server_errors_are_retried_after_the_delay_the_server_asks(
    error: Error,
) -> None:
    async with ScriptedModelServer() as server:
        server.extend([error, error, Reply("at last")])
        # A backoff of an hour: only the server's Retry-After lets this finish before the guard.
        turn = await complete(server, max_retries=2, retry_base_delay=3600.0, retry_max_delay=3600.0)
    assert turn.content == "at last"
    server.assert_script_consumed()


async def test_a_retry_after_longer_than_the_cap_waits_the_cap() -> None:
    async with ScriptedModelServer() as server:
        server.extend([Error(429, headers={"Retry-After": "3600"}), Reply("at last")])
        turn = await complete(server, max_retries=1, retry_base_delay=0.0, retry_max_delay=0.01)
    assert turn.content == "at last" and len(server.requests) == 2


async def test_without_retry_after_the_backoff_applies() -> None:
    async with ScriptedModelServer() as server:
        server.extend([Error(502), Reply("ok")])
        turn = await complete(server, max_retries=1, retry_base_delay=0.01)
    assert turn.content == "ok" and len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_client_errors_are_not_retried(status: int) -> None:
    async with ScriptedModelServer() as server:
        server.extend([Error(status, message="no such thing"), Reply("never sent")])
        with pytest.raises(ModelError, match=f"^model server returned {status}: no such thing$"):
            await complete(server, max_retries=3, retry_base_delay=0.0)
    assert len(server.requests) == 1


async def test_retries_run_out_into_a_model_error() -> None:
    async with ScriptedModelServer() as server:
        server.extend([Error(500, message="overloaded")] * 3)
        with pytest.raises(ModelError, match=r"^model server returned 500: overloaded$"):
            await complete(server, max_retries=2, retry_base_delay=0.0)
    server.assert_script_consumed()


async def test_a_call_past_the_request_timeout_is_a_model_error() -> None:
    async with ScriptedModelServer() as server:
        server.add(Hang(60))
        with pytest.raises(
            ModelError, match=r"^model server unreachable after 1 attempts: Request timed out"
        ):
            await complete(server, request_timeout=0.2)


async def test_an_unreachable_server_is_retried_then_a_model_error() -> None:
    async with ScriptedModelServer() as server:
        pass  # nothing listens on its address any more
    with pytest.raises(ModelError, match=r"^model server unreachable after 3 attempts: Connection error"):
        await complete(server, max_retries=2, retry_base_delay=0.0)

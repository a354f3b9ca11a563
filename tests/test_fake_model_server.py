"""The scripted model server, driven by the real ``openai`` client over real HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk

from tests.fakes import Call, Error, Hang, Reply, ScriptedModelServer, ToolCalls, Usage

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def client_for(server: ScriptedModelServer, **kwargs: Any) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test", base_url=server.base_url, max_retries=0, **kwargs)


async def stream_chunks(client: AsyncOpenAI, **kwargs: Any) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True, **kwargs)
    return [chunk async for chunk in stream]


async def wait_for_disconnect(server: ScriptedModelServer) -> None:
    """The server sees a client's hang-up a moment after the client gives up."""
    for _ in range(100):
        if server.disconnects:
            break
        await asyncio.sleep(0.02)
    assert server.disconnects == 1


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_streamed_text_arrives_in_several_chunks_with_usage_last() -> None:
    async with ScriptedModelServer() as server, client_for(server) as client:
        server.add(Reply("Hello there, world!", reasoning="thinking it over", usage=Usage(12, 7)))
        chunks = await stream_chunks(client, stream_options={"include_usage": True})

    assert text_of(chunks) == "Hello there, world!"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 2
    reasoning = [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices]
    assert "".join(r for r in reasoning if r) == "thinking it over"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.total_tokens) == (12, 19)
    assert {c.id for c in chunks} == {"chatcmpl-1"}
    assert server.requests[0]["messages"] == MESSAGES
    assert server.headers[0]["authorization"] == "Bearer test"
    server.assert_script_consumed()


async def test_streamed_tool_calls_accumulate_by_index() -> None:
    calls = [Call("execute_bash", {"command": "echo hi"}), Call("read_file", "{not json", id="call_x")]
    async with ScriptedModelServer() as server, client_for(server) as client:
        server.add(ToolCalls(calls, content="Let me look."))
        chunks = await stream_chunks(client)

    accumulated: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            slot = accumulated.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            assert delta.function is not None
            slot["id"] += delta.id or ""
            slot["name"] += delta.function.name or ""
            slot["arguments"] += delta.function.arguments or ""
    assert accumulated == {
        0: {"id": "call_1", "name": "execute_bash", "arguments": json.dumps({"command": "echo hi"})},
        1: {"id": "call_x", "name": "read_file", "arguments": "{not json"},
    }
    assert sum(1 for c in chunks if c.choices[0].delta.tool_calls) > 4  # arguments came in pieces
    assert text_of(chunks) == "Let me look."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is None  # usage only when stream_options.include_usage asks for it


async def test_non_streaming_reply_and_tool_calls() -> None:
    async with ScriptedModelServer() as server, client_for(server) as client:
        server.extend([ToolCalls([Call("execute_bash", {"command": "ls"})]), Reply("done")])
        first = await client.chat.completions.create(model="m", messages=MESSAGES)
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        tool_result = {"role": "tool", "tool_call_id": call.id, "content": "a.txt"}
        history: list[Any] = [*MESSAGES, first.choices[0].message.model_dump(), tool_result]
        second = await client.chat.completions.create(model="m", messages=history)

    assert first.object == "chat.completion"
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "execute_bash"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"command": "ls"}  # type: ignore[union-attr]
    assert second.choices[0].message.content == "done"
    assert second.usage is not None and second.usage.total_tokens == 15
    assert server.requests[1]["messages"][-1] == tool_result
    server.assert_script_consumed()


async def test_rate_limit_surfaces_with_retry_after() -> None:
    async with ScriptedModelServer() as server, client_for(server) as client:
        server.add(Error(429, message="slow down", headers={"Retry-After": "1"}))
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)

    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": None,
    }
    server.assert_script_consumed()


async def test_reject_stream_options_is_a_bad_request_that_keeps_the_turn() -> None:
    async with ScriptedModelServer(reject_stream_options=True) as server, client_for(server) as client:
        server.add(Reply("fine without it"))
        with pytest.raises(openai.BadRequestError, match="Unrecognized request argument: stream_options"):
            await stream_chunks(client, stream_options={"include_usage": True})
        chunks = await stream_chunks(client)

    assert text_of(chunks) == "fine without it"
    assert "stream_options" in server.requests[0]
    server.assert_script_consumed()


async def test_arguments_as_object_reach_the_client_as_a_dict() -> None:
    async with ScriptedModelServer(arguments_as_object=True) as server, client_for(server) as client:
        server.extend([ToolCalls([Call("execute_bash", {"command": "echo hi"})])] * 2)
        chunks = await stream_chunks(client)
        completion = await client.chat.completions.create(model="m", messages=MESSAGES)

    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1  # the whole call in one delta, like Ollama
    assert deltas[0].function is not None
    # The SDK builds response models without validation, so the object is passed through as is.
    assert deltas[0].function.arguments == {"command": "echo hi"}
    message_call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert message_call.function.arguments == {"command": "echo hi"}  # type: ignore[union-attr]


async def test_empty_deltas_and_omitted_usage() -> None:
    quirky = ScriptedModelServer(empty_deltas=True, omit_usage=True, reasoning_field="reasoning")
    async with quirky as server, client_for(server) as client:
        server.add(Reply("still intact", reasoning="hm"))
        chunks = await stream_chunks(client, stream_options={"include_usage": True})

    assert text_of(chunks) == "still intact"
    assert any(c.choices == [] for c in chunks)
    assert any(c.choices and c.choices[0].delta.content is None for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert [getattr(c.choices[0].delta, "reasoning", None) for c in chunks if c.choices].count("hm") == 1


async def test_empty_script_answers_500_and_is_recorded() -> None:
    async with ScriptedModelServer() as server, client_for(server) as client:
        with pytest.raises(openai.InternalServerError, match="script ran out"):
            await client.chat.completions.create(model="m", messages=MESSAGES)

    assert server.unscripted == [0]
    with pytest.raises(AssertionError, match="after the script ran out"):
        server.assert_script_consumed()


async def test_unconsumed_turns_fail_the_assertion() -> None:
    async with ScriptedModelServer() as server:
        server.add(Reply("never asked for"))
        assert server.pending == [Reply("never asked for")]
        with pytest.raises(AssertionError, match="1 scripted turn"):
            server.assert_script_consumed()


async def test_hang_times_out_the_client_without_consuming_the_next_turn() -> None:
    async with ScriptedModelServer() as server, client_for(server, timeout=0.3) as client:
        server.extend([Hang(30), Reply("after the hang")])
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
        await wait_for_disconnect(server)
        retry = await client.chat.completions.create(model="m", messages=MESSAGES)

    assert retry.choices[0].message.content == "after the hang"
    server.assert_script_consumed()


async def test_hang_then_answers_with_the_next_turn() -> None:
    async with ScriptedModelServer() as server, client_for(server) as client:
        server.extend([Hang(0.05), Reply("late")])
        chunks = await stream_chunks(client)

    assert text_of(chunks) == "late"
    server.assert_script_consumed()


async def test_models_lists_the_configured_model() -> None:
    async with ScriptedModelServer(model="qwen-test") as server, client_for(server) as client:
        page = await client.models.list()

    assert [m.id for m in page.data] == ["qwen-test"]


async def test_client_closing_mid_stream_is_recorded_as_a_disconnect() -> None:
    async with ScriptedModelServer(chunk_chars=1) as server, client_for(server) as client:
        server.add(Reply("a long slow answer", chunk_delay=0.05))
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
        await wait_for_disconnect(server)

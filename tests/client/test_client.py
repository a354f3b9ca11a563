"""The Python client, async and sync, against the real app on loopback and the scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from client import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    NotFoundError,
    TaskEvent,
)
from tests.client.conftest import base_url
from tests.fakes import Hang, Reply, ScriptedModelServer

pytestmark = pytest.mark.docker  # the app starts with its sandbox image (no container for these runs)

Served = TestClient[Any, Any]


@pytest.fixture
async def api(served: Served) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url(served), api_key="tok-a") as client:
        yield client


def text_of(events: list[TaskEvent]) -> str:
    return "".join(e.data["content"] for e in events if e.type == "text_chunk")


async def test_starts_a_task_and_follows_it_to_its_end(
    api: AsyncClient, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("The answer is 42."))
    accepted = await api.send_message("What is 6 * 7?")

    events = [event async for event in api.follow(accepted.task_id)]

    assert [e.offset for e in events] == list(range(len(events)))
    assert events[0].type == "run_started" and events[-1].type == "run_completed"
    assert text_of(events) == "The answer is 42."
    state = await api.get_task(accepted.task_id)
    assert (state.status, state.conversation_id) == ("completed", accepted.conversation_id)
    listed = await api.list_tasks(status="completed")
    assert [t.task_id for t in listed.tasks] == [accepted.task_id]
    assert listed.tasks[0].usage.total_tokens == 15


class StreamCut(httpx.ReadError):
    pass


def first_two_frames(received: bytes) -> bytes | None:
    """The first two whole SSE frames of ``received``, once it has them."""
    frames = received.split(b"\n\n")
    return b"\n\n".join(frames[:2]) + b"\n\n" if len(frames) > 2 else None


class CutsFirstStream:
    """Records each event stream's ``Last-Event-ID``; the first stream is the one to cut."""

    def __init__(self) -> None:
        self.resumed_from: list[str | None] = []

    def cuts(self, request: httpx.Request) -> bool:
        if not request.url.path.endswith("/events"):
            return False
        self.resumed_from.append(request.headers.get("Last-Event-ID"))
        return len(self.resumed_from) == 1


class CutOnce(CutsFirstStream, httpx.AsyncBaseTransport):
    """The real transport, except that the first event stream breaks after its first two events,
    as a reset connection does."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.cuts(request):
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        upstream: httpx.AsyncByteStream = response.stream

        class Cut(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                received = b""
                async for chunk in upstream:
                    received += chunk
                    if (head := first_two_frames(received)) is not None:
                        yield head
                        raise StreamCut("connection reset (cut by the test)")
                yield received

            async def aclose(self) -> None:
                await upstream.aclose()

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut(), request=request)


class SyncCutOnce(CutsFirstStream, httpx.BaseTransport):
    """:class:`CutOnce` for the blocking client."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.cuts(request):
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        upstream: httpx.SyncByteStream = response.stream

        class Cut(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                received = b""
                for chunk in upstream:
                    received += chunk
                    if (head := first_two_frames(received)) is not None:
                        yield head
                        raise StreamCut("connection reset (cut by the test)")
                yield received

            def close(self) -> None:
                upstream.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut(), request=request)


async def test_follow_resumes_after_the_stream_drops(
    served: Served, model_server: ScriptedModelServer
) -> None:
    """The first stream breaks after two events: the follow reconnects from the last one it had."""
    model_server.add(Reply("one two three four five six", chunk_delay=0.02))
    transport = CutOnce()
    async with AsyncClient(base_url(served), api_key="tok-a", transport=transport) as api:
        accepted = await api.send_message("count")
        events = [event async for event in api.follow(accepted.task_id)]

    assert [e.offset for e in events] == list(range(len(events)))  # none missed, none repeated
    assert events[-1].type == "run_completed"
    assert text_of(events) == "one two three four five six"
    assert transport.resumed_from[:2] == ["-1", "1"]  # resumed after the second event, the last received


async def test_the_blocking_follow_resumes_too(served: Served, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("six five four three two one", chunk_delay=0.02))
    transport = SyncCutOnce()

    def script() -> list[TaskEvent]:
        with Client(base_url(served), api_key="tok-a", transport=transport) as api:
            return list(api.follow(api.send_message("count down").task_id))

    events = await asyncio.to_thread(script)  # while this test's event loop serves the app

    assert [e.offset for e in events] == list(range(len(events)))
    assert text_of(events) == "six five four three two one" and events[-1].type == "run_completed"
    assert transport.resumed_from[:2] == ["-1", "1"]


async def test_follows_from_an_offset_and_ends_past_the_final_event(
    api: AsyncClient, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("done"))
    accepted = await api.send_message("go")
    everything = [event async for event in api.follow(accepted.task_id)]

    later = [event async for event in api.follow(accepted.task_id, from_offset=2)]
    past_the_end = [event async for event in api.follow(accepted.task_id, from_offset=len(everything))]

    assert later == everything[2:]
    assert past_the_end == []


async def test_cancel_ends_a_running_task(api: AsyncClient, model_server: ScriptedModelServer) -> None:
    model_server.add(Hang(120))
    accepted = await api.send_message("wait forever")
    with pytest.raises(ConflictError):  # one active task per user
        await api.send_message("another")

    canceled = await api.cancel(accepted.task_id)
    events = [event async for event in api.follow(accepted.task_id)]

    assert canceled.status == "canceled"
    assert events[-1].type == "run_canceled"
    assert [t.status for t in (await api.list_tasks()).tasks] == ["canceled"]


async def test_errors_are_typed_from_either_envelope(served: Served, api: AsyncClient) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        await api.get_task("no-such-task")
    with pytest.raises(NotFoundError) as invoked:  # the capability envelope: {code, message, data}
        await api.invoke_capability("no-such-capability", "x")
    assert invoked.value.status == 404 and "no-such-capability" in invoked.value.message
    with pytest.raises(BadRequestError):
        await api.list_tasks(status="finished")
    async with AsyncClient(base_url(served), api_key="wrong") as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.list_tasks()


async def test_the_blocking_client_runs_a_capability_and_moves_files(
    served: Served, model_server: ScriptedModelServer
) -> None:
    url = base_url(served)

    def script() -> tuple[Any, ...]:
        with Client(url, api_key="tok-a") as api:
            api.create_workspace("ws1")
            uploaded = api.upload_file(b"a,b\n1,2\n", name="data.csv", workspace="ws1")
            files = api.list_files("user_upload", workspace="ws1")
            content = api.download_file(uploaded.path, workspace="ws1")
            accepted = api.invoke_capability("general", "summarise", workspace="ws1")
            events = list(api.follow(accepted.task_id))
            final = api.wait(accepted.task_id)
            chat = api.chat("quick one")
            return uploaded, files, content, accepted, events, final, chat

    model_server.add(Reply("summary"))
    model_server.add(Reply("chat answer"))
    # The blocking client in a thread, while this test's event loop serves the app.
    uploaded, files, content, accepted, events, final, chat = await asyncio.to_thread(script)

    assert (uploaded.path, uploaded.size) == ("user_upload/data.csv", 8)
    assert [f.path for f in files.files] == ["user_upload/data.csv"]
    assert content == b"a,b\n1,2\n"
    assert accepted.capability_id == "general" and accepted.transaction_id is None
    assert text_of(events) == "summary" and final.status == "completed"
    assert chat.response == "chat answer" and chat.error is None

"""The official a2a-sdk client against /a2a: A2A 1.0 (its default) and 0.3 (its compat transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.compat.v0_3.jsonrpc_transport import CompatJsonRpcTransport
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE
from tests.fakes import Hang, Reply, ScriptedModelServer

MakeSdk = Callable[..., Awaitable[Client]]
ANSWER = "The answer, streamed in many small chunks, is forty-two."


@pytest.fixture
async def sdk(api: TestClient[Any, Any]) -> AsyncIterator[MakeSdk]:
    """Makes a2a-sdk clients from the served agent card (``version``: keep only that interface)."""
    base = str(api.make_url("")).rstrip("/")
    http = httpx.AsyncClient(headers=ALICE, timeout=30)

    async def make(*, streaming: bool = True, polling: bool = False, version: str | None = None) -> Client:
        card = await A2ACardResolver(http, base).get_agent_card()
        if version is not None:
            kept = [i for i in card.supported_interfaces if i.protocol_version == version]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(kept)
        factory = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming, polling=polling))
        return factory.create(card)

    yield make
    await http.aclose()


def text_of(task: Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


def message(text: str, **extra: Any) -> SendMessageRequest:
    return SendMessageRequest(message=new_text_message(text, **extra))


async def until_done(client: Client, task_id: str) -> Task:
    for _ in range(200):
        task = await client.get_task(GetTaskRequest(id=task_id))
        if task.status.state in (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED):
            return task
        await asyncio.sleep(0.05)
    raise AssertionError("task never ended")


async def test_stream_a_message(sdk: MakeSdk, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply(ANSWER, chunk_delay=0.01)])
    client = await sdk()

    events = [event async for event in client.send_message(message("what is six times seven?"))]
    task = await client.get_task(GetTaskRequest(id=events[0].task.id))

    kinds = [event.WhichOneof("payload") for event in events]
    assert kinds[0] == "task" and kinds[-1] == "status_update"
    assert set(kinds[1:-1]) == {"artifact_update"}
    assert events[0].task.status.state == TaskState.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events[1:-2]]
    assert "".join(c.artifact.parts[0].text for c in chunks) == ANSWER
    assert [c.append for c in chunks] == [False] + [True] * (len(chunks) - 1)
    final_artifact = events[-2].artifact_update
    assert final_artifact.last_chunk and not final_artifact.append
    assert final_artifact.artifact.parts[0].text == ANSWER
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert task.status.state == TaskState.TASK_STATE_COMPLETED and text_of(task) == ANSWER
    assert [m.parts[0].text for m in task.history] == ["what is six times seven?", ANSWER]


async def test_send_waits_for_the_answer(sdk: MakeSdk, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("forty-two"), Reply("again")])
    client = await sdk(streaming=False)

    (only,) = [event async for event in client.send_message(message("6*7?"))]
    (second,) = [event async for event in client.send_message(message("and again?"))]  # not a 409

    assert only.task.status.state == TaskState.TASK_STATE_COMPLETED and text_of(only.task) == "forty-two"
    assert text_of(second.task) == "again"


async def test_polling_send_returns_at_once(sdk: MakeSdk, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("eventually", chunk_delay=0.05)])
    client = await sdk(streaming=False, polling=True)

    (event,) = [event async for event in client.send_message(message("slowly"))]
    done = await until_done(client, event.task.id)

    assert event.task.status.state == TaskState.TASK_STATE_WORKING
    assert text_of(done) == "eventually"


async def test_get_and_cancel(sdk: MakeSdk, model_server: ScriptedModelServer) -> None:
    model_server.extend([Hang(30)])
    client = await sdk(streaming=False, polling=True)
    (event,) = [event async for event in client.send_message(message("hang"))]

    canceled = await client.cancel_task(CancelTaskRequest(id=event.task.id))
    fetched = await client.get_task(GetTaskRequest(id=event.task.id))

    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    assert fetched.status.state == TaskState.TASK_STATE_CANCELED
    assert fetched.status.message.parts[0].text == "canceled by the user"
    with pytest.raises(TaskNotCancelableError):
        await client.cancel_task(CancelTaskRequest(id=event.task.id))
    with pytest.raises(TaskNotFoundError):
        await client.get_task(GetTaskRequest(id="no-such-task"))


async def test_resubscribe_after_a_dropped_stream_misses_nothing(
    sdk: MakeSdk, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply(ANSWER, chunk_delay=0.05)])
    client = await sdk()
    received = ""
    stream = client.send_message(message("stream, then drop"))
    first: StreamResponse = await anext(stream)
    async for event in stream:
        received += event.artifact_update.artifact.parts[0].text
        if len(received) >= 8:
            break
    await stream.aclose()  # the connection drops mid-answer
    await asyncio.sleep(0.3)  # the task goes on while nobody listens

    resumed = [event async for event in client.subscribe(SubscribeToTaskRequest(id=first.task.id))]

    snapshot = resumed[0].task
    assert resumed[0].WhichOneof("payload") == "task" and snapshot.id == first.task.id
    so_far = text_of(snapshot)
    assert so_far.startswith(received) and len(so_far) > len(received)  # what came while away
    appended = [e.artifact_update for e in resumed[1:] if e.HasField("artifact_update")]
    live = "".join(u.artifact.parts[0].text for u in appended if u.append)
    assert so_far + live == ANSWER  # the snapshot and the rest join up: not a chunk lost or doubled
    assert appended[-1].last_chunk and appended[-1].artifact.parts[0].text == ANSWER
    assert resumed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


async def test_list_tasks_and_context_ids(sdk: MakeSdk, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("first"), Reply("second")])
    client = await sdk(streaming=False)

    (one,) = [e async for e in client.send_message(message("one", context_id="sdk-thread"))]
    (two,) = [e async for e in client.send_message(message("two", context_id="sdk-thread"))]
    listed = await client.list_tasks(ListTasksRequest(context_id="sdk-thread", page_size=10))

    assert one.task.context_id == two.task.context_id == "sdk-thread"
    assert [t.id for t in listed.tasks] == [two.task.id, one.task.id] and listed.total_size == 2
    assert [m["content"] for m in model_server.requests[1]["messages"][1:]] == ["one", "first", "two"]


async def test_the_v03_client_sends_streams_gets_cancels_and_resubscribes(
    sdk: MakeSdk, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply(ANSWER, chunk_delay=0.01), Reply("blocking"), Hang(30)])
    streaming = await sdk(version="0.3")
    assert isinstance(streaming._transport, CompatJsonRpcTransport)

    events = [event async for event in streaming.send_message(message("0.3 stream"))]
    task_id = events[0].task.id
    got = await streaming.get_task(GetTaskRequest(id=task_id))
    again = [event async for event in streaming.subscribe(SubscribeToTaskRequest(id=task_id))]
    (blocking,) = [e async for e in (await sdk(version="0.3", streaming=False)).send_message(message("b"))]
    polling = await sdk(version="0.3", streaming=False, polling=True)
    (hanging,) = [e async for e in polling.send_message(message("hang"))]
    canceled = await polling.cancel_task(CancelTaskRequest(id=hanging.task.id))

    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert got.status.state == TaskState.TASK_STATE_COMPLETED and text_of(got) == ANSWER
    assert [e.WhichOneof("payload") for e in again] == ["task"] and text_of(again[0].task) == ANSWER
    assert text_of(blocking.task) == "blocking"
    assert hanging.task.status.state == TaskState.TASK_STATE_WORKING
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    with pytest.raises(TaskNotCancelableError):
        await polling.cancel_task(CancelTaskRequest(id=hanging.task.id))

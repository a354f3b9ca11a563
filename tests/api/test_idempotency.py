"""Idempotency-Key over HTTP: a retried request runs once and gets the first answer back."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientTimeout, web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from api.web.errors import error_middleware
from api.web.idempotency import REPLAYED_HEADER, idempotency_keys, idempotency_middleware, setup_idempotency
from api.web.keys import IDEMPOTENCY, STORE, TASKS, USER
from runtime.store import Store
from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker
from tests.api.test_tasks import follow
from tests.fakes import Hang, Reply, ScriptedModelServer

Client = TestClient[Any, Any]
pytestmark = pytest.mark.both_engines  # the store behind every route here: SQLite and PostgreSQL


def keyed(key: str, headers: dict[str, str] = ALICE) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def task_ids(client: Client) -> list[str]:
    ids = []
    for owner in ("alice", "bob"):  # the api fixture's two users
        records, _ = await client.app[STORE].list_tasks(owner)
        ids += [record.id for record in records]
    return ids


async def test_a_retried_message_runs_once_and_replays_the_same_task(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(1), Reply("done")])  # one model call, answered after 1 s
    body = {"message": "count the primes below 100"}

    first = await api.post("/api/v1/messages", json=body, headers=keyed("msg-1"))
    assert first.status == 202, await first.text()
    assert REPLAYED_HEADER not in first.headers
    accepted = await first.json()
    # While the task runs, a second message would be a 409 (one active task per user): the retry
    # is recognised as the same request and answered as the first was.
    retry = await api.post("/api/v1/messages", json=body, headers=keyed("msg-1"))
    assert retry.status == 202
    assert retry.headers[REPLAYED_HEADER] == "true"
    assert retry.content_type == "application/json"
    assert await retry.json() == accepted
    status, _ = await follow(api, accepted["task_id"], ALICE)
    late = await api.post("/api/v1/messages", json=body, headers=keyed("msg-1"))

    assert status == "completed"
    assert late.status == 202 and await late.json() == accepted
    assert len(model_server.requests) == 1
    assert await task_ids(api) == [accepted["task_id"]]
    model_server.assert_script_consumed()


async def test_the_same_key_for_another_request_is_a_422(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("one"))
    first = await api.post("/api/v1/messages", json={"message": "one"}, headers=keyed("k"))
    assert first.status == 202

    other_body = await api.post("/api/v1/messages", json={"message": "two"}, headers=keyed("k"))
    other_path = await api.post(
        "/api/v1/workspaces/default/messages", json={"message": "one"}, headers=keyed("k")
    )

    for response in (other_body, other_path):
        assert response.status == 422
        body = await response.json()
        assert body["success"] is False and "different request" in body["error"]
    await follow(api, (await first.json())["task_id"], ALICE)
    assert len(model_server.requests) == 1
    assert len(await task_ids(api)) == 1


async def test_a_retry_while_the_first_is_in_flight_is_a_409(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(2), Reply("slow answer")])
    body = {"message": "take your time", "max_iterations": 1}

    async def send() -> Any:
        return await api.post("/chat", json=body, headers=keyed("chat-1"))

    first = asyncio.create_task(send())
    for _ in range(200):  # until the run is under way (its model call has arrived)
        if model_server.requests:
            break
        await asyncio.sleep(0.01)
    duplicate = await send()
    assert duplicate.status == 409
    assert "still being processed" in (await duplicate.json())["error"]
    answered = await first
    assert answered.status == 200
    answer = await answered.json()
    replay = await send()

    assert answer["response"] == "slow answer"
    assert replay.status == 200 and replay.headers[REPLAYED_HEADER] == "true"
    assert await replay.json() == answer
    assert len(model_server.requests) == 1


async def test_keys_expire_after_the_configured_window(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, idempotency_ttl=0.5)
    first = await (await api.post("/api/v1/conversations", headers=keyed("conv"))).json()
    replay = await api.post("/api/v1/conversations", headers=keyed("conv"))
    assert replay.headers[REPLAYED_HEADER] == "true"
    assert (await replay.json())["conversation_id"] == first["conversation_id"]

    await asyncio.sleep(0.7)
    after = await api.post("/api/v1/conversations", headers=keyed("conv"))

    assert after.status == 200 and REPLAYED_HEADER not in after.headers
    assert (await after.json())["conversation_id"] != first["conversation_id"]


async def test_keys_are_per_user(api: Client) -> None:
    alices = await (await api.post("/api/v1/conversations", headers=keyed("same"))).json()

    bobs = await api.post("/api/v1/conversations", headers=keyed("same", BOB))
    bob_again = await api.post("/api/v1/conversations", headers=keyed("same", BOB))
    alice_again = await api.post("/api/v1/conversations", headers=keyed("same"))

    assert bobs.status == 200 and REPLAYED_HEADER not in bobs.headers
    bob_conversation = (await bobs.json())["conversation_id"]
    assert bob_conversation != alices["conversation_id"]
    assert (await bob_again.json())["conversation_id"] == bob_conversation
    assert (await alice_again.json())["conversation_id"] == alices["conversation_id"]


async def test_a_refused_request_does_not_use_up_its_key(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("ran"))
    missing = {"conversation_id": "conv_20260101_000000_00000000", "message": "hi"}
    refused = await api.post("/api/v1/messages", json=missing, headers=keyed("k"))
    again = await api.post("/api/v1/messages", json=missing, headers=keyed("k"))
    assert refused.status == again.status == 404
    assert REPLAYED_HEADER not in again.headers

    fixed = await api.post("/api/v1/messages", json={"message": "hi"}, headers=keyed("k"))

    assert fixed.status == 202  # not a 422: the refused request left the key free
    status, _ = await follow(api, (await fixed.json())["task_id"], ALICE)
    assert status == "completed"


async def test_a_5xx_is_not_stored_and_the_key_works_after_a_restart(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    draining = await make_client(api_keys=TWO_USER_KEYS)
    await draining.app[TASKS].drain()  # what SIGTERM does: new messages get 503
    body = {"message": "important"}
    refused = await draining.post("/api/v1/messages", json=body, headers=keyed("k"))
    assert refused.status == 503
    await draining.close()

    restarted = await make_client(api_keys=TWO_USER_KEYS)  # the same data directory, so the same keys
    model_server.add(Reply("done"))
    accepted = await restarted.post("/api/v1/messages", json=body, headers=keyed("k"))

    assert accepted.status == 202 and REPLAYED_HEADER not in accepted.headers
    status, _ = await follow(restarted, (await accepted.json())["task_id"], ALICE)
    assert status == "completed"


@pytest.mark.parametrize("key", ["", "x" * 256], ids=["empty", "too-long"])
async def test_a_malformed_key_is_a_400(api: Client, key: str) -> None:
    response = await api.post("/api/v1/conversations", headers=keyed(key))

    assert response.status == 400
    assert "printable ASCII" in (await response.json())["error"]
    assert (await (await api.get("/api/v1/conversations", headers=ALICE)).json())["conversations"] == []


async def test_two_keys_on_one_request_are_a_400(api: Client) -> None:
    headers = CIMultiDict(ALICE)
    headers.add("Idempotency-Key", "a")
    headers.add("Idempotency-Key", "b")

    response = await api.post("/api/v1/conversations", headers=headers)

    assert response.status == 400
    assert "one Idempotency-Key" in (await response.json())["error"]


async def test_the_drafts_quoted_key_is_the_same_key(api: Client) -> None:
    first = await (await api.post("/api/v1/conversations", headers=keyed('"abc"'))).json()

    replay = await api.post("/api/v1/conversations", headers=keyed("abc"))

    assert replay.headers[REPLAYED_HEADER] == "true"
    assert (await replay.json())["conversation_id"] == first["conversation_id"]


async def test_the_key_is_ignored_on_reads(api: Client) -> None:
    await api.post("/api/v1/conversations", headers=ALICE)
    before = await (await api.get("/api/v1/conversations", headers=keyed("read"))).json()
    await api.post("/api/v1/conversations", headers=ALICE)

    after = await api.get("/api/v1/conversations", headers=keyed("read"))

    assert REPLAYED_HEADER not in after.headers
    assert len((await after.json())["conversations"]) == len(before["conversations"]) + 1 == 2


async def test_openapi_documents_the_key_and_its_answers(api: Client) -> None:
    document = await (await api.get("/openapi.json")).json()
    paths = document["paths"]

    message = paths["/api/v1/messages"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in message["parameters"] if p["in"] == "header"}
    assert {"409", "422", "429"} <= set(message["responses"])
    listing = paths["/api/v1/workspaces"]["get"]
    assert "429" in listing["responses"] and "422" not in listing["responses"]
    upload = paths["/api/v1/files/upload"]["post"]  # multipart: the key is ignored there
    assert "Idempotency-Key" not in {p["name"] for p in upload.get("parameters", [])}
    assert document["components"]["securitySchemes"]["apiKeyAuth"]["name"] == "X-Api-Key"


# --- the middleware on handlers the app does not have (yet): streams, 5xx answers, crashes ------


Calls = Counter[str]
Ended = defaultdict[str, asyncio.Event]  # set when a handler has ended, by path


@pytest.fixture
async def calls() -> Calls:
    return Counter()


@pytest.fixture
async def ended() -> Ended:
    return defaultdict(asyncio.Event)


@pytest.fixture
async def bare(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path, calls: Calls, ended: Ended
) -> Client:
    """Just the error, user and idempotency middlewares, in front of scripted handlers."""

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: 1\n\n")
        if request.path == "/broken":  # what a write to a client that has gone raises in production
            raise ConnectionResetError("Cannot write to closing transport")
        if request.path == "/endless":  # until the client leaves (the test server cancels us)
            await asyncio.sleep(30)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)  # the client gives up first
        return web.json_response({})

    async def flaky(request: web.Request) -> web.Response:
        return web.json_response({"call": calls["/flaky"]}, status=502 if calls["/flaky"] == 1 else 200)

    async def crash(request: web.Request) -> web.Response:
        if calls["/crash"] == 1:
            raise RuntimeError("a bug")
        return web.json_response({"call": calls["/crash"]})

    @web.middleware
    async def as_alice(request: web.Request, handler: Any) -> web.StreamResponse:
        request[USER] = "alice"
        return await handler(request)

    @web.middleware
    async def counted(request: web.Request, handler: Any) -> web.StreamResponse:
        calls[request.path] += 1  # the handler runs
        try:
            return await handler(request)
        finally:
            ended[request.path].set()

    async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
        async with Store.open(tmp_path / "db.sqlite3") as store, idempotency_keys(store, ttl=60) as keys:
            app[IDEMPOTENCY] = keys
            yield

    app = web.Application(middlewares=[error_middleware, as_alice, idempotency_middleware, counted])
    setup_idempotency(app)
    app.cleanup_ctx.append(keys_ctx)
    for path in ("/stream", "/broken", "/endless"):
        app.router.add_post(path, stream)
    app.router.add_post("/slow", slow)
    app.router.add_post("/flaky", flaky)
    app.router.add_post("/crash", crash)
    return await aiohttp_client(app)


async def retry(client: Client, path: str, key: str) -> tuple[int, str]:
    response = await client.post(path, headers={"Idempotency-Key": key})
    return response.status, (await response.json())["error"]


async def test_a_streamed_answer_is_not_replayed_and_never_runs_twice(bare: Client, calls: Calls) -> None:
    first = await bare.post("/stream", headers={"Idempotency-Key": "s"})
    assert first.status == 200 and await first.text() == "data: 1\n\n"

    status, error = await retry(bare, "/stream", "s")

    assert status == 409 and "answered with a stream, which cannot be replayed" in error
    assert calls["/stream"] == 1


@pytest.mark.parametrize("path", ["/broken", "/endless"], ids=["write-fails", "handler-cancelled"])
async def test_a_stream_the_client_left_still_never_runs_twice(
    bare: Client, calls: Calls, ended: Ended, path: str
) -> None:
    first = await bare.post(path, headers={"Idempotency-Key": "e"})
    assert await first.content.readline() == b"data: 1\n"
    first.close()  # the client goes away mid-stream
    await asyncio.wait_for(ended[path].wait(), 10)

    status, error = await retry(bare, path, "e")

    assert status == 409 and "answered with a stream" in error
    assert calls[path] == 1


async def test_a_request_cut_off_before_its_answer_never_runs_again(
    bare: Client, calls: Calls, ended: Ended
) -> None:
    with pytest.raises(TimeoutError):
        await bare.post("/slow", headers={"Idempotency-Key": "i"}, timeout=ClientTimeout(total=0.3))
    await asyncio.wait_for(ended["/slow"].wait(), 10)

    status, error = await retry(bare, "/slow", "i")

    assert status == 409 and "was interrupted" in error
    assert calls["/slow"] == 1


async def test_a_5xx_answer_frees_the_key(bare: Client, calls: Calls) -> None:
    failed = await bare.post("/flaky", headers={"Idempotency-Key": "f"})
    assert failed.status == 502

    retried = await bare.post("/flaky", headers={"Idempotency-Key": "f"})
    replayed = await bare.post("/flaky", headers={"Idempotency-Key": "f"})

    assert retried.status == 200 and await retried.json() == {"call": 2}
    assert replayed.headers[REPLAYED_HEADER] == "true" and await replayed.json() == {"call": 2}
    assert calls["/flaky"] == 2


async def test_a_crash_frees_the_key(bare: Client, calls: Calls) -> None:
    crashed = await bare.post("/crash", headers={"Idempotency-Key": "c"})
    assert crashed.status == 500

    retried = await bare.post("/crash", headers={"Idempotency-Key": "c"})

    assert retried.status == 200 and await retried.json() == {"call": 2}
    assert calls["/crash"] == 2

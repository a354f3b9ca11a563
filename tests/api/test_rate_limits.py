"""Rate limits over HTTP: per user, concurrency (streams included), stricter public limits, headers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker
from tests.api.test_tasks import start
from tests.fakes import Hang, Reply, ScriptedModelServer

Client = TestClient[Any, Any]


async def test_over_the_rate_a_429_with_retry_after_then_success(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, rate_limit_per_minute=60)  # a token a second
    served = 0
    for _ in range(90):
        response = await api.get("/api/v1/workspaces", headers=ALICE)
        if response.status == 429:
            break
        assert response.status == 200
        served += 1
    else:
        raise AssertionError("never limited")

    assert served >= 60  # the whole minute's quota may be used in a burst
    assert response.headers["Retry-After"] == "1"
    assert response.headers["RateLimit-Remaining"] == "0"
    body = await response.json()
    assert body["success"] is False and "60 requests a minute" in body["error"]
    assert (await api.get("/api/v1/workspaces", headers=BOB)).status == 200  # bob has his own
    await asyncio.sleep(int(response.headers["Retry-After"]))
    assert (await api.get("/api/v1/workspaces", headers=ALICE)).status == 200


async def test_every_response_carries_the_ratelimit_headers(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS)  # the defaults: 120 a minute
    model_server.add(Reply("hi"))
    listed = await api.get("/api/v1/workspaces", headers=ALICE)
    missing = await api.get("/api/v1/conversations/nope", headers=ALICE)
    accepted = await start(api)  # two POSTs
    stream = await api.get(f"/api/v1/tasks/{accepted['task_id']}/events", headers=ALICE)
    await stream.read()
    public = await api.get("/health")

    remaining = []
    for response in (listed, missing, stream):
        assert response.headers["RateLimit-Limit"] == "120"
        assert int(response.headers["RateLimit-Reset"]) >= 1
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert missing.status == 404 and stream.content_type == "text/event-stream"
    assert remaining == [119, 118, 115]
    assert public.headers["RateLimit-Limit"] == "60"  # the public endpoints' own, stricter limit
    assert public.headers["RateLimit-Remaining"] == "59"


async def test_open_streams_count_toward_the_concurrency_limit(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, rate_limit_concurrency=2)
    model_server.extend([Hang(3), Reply("done")])
    accepted = await start(api)
    streams = [await api.get(f"/api/v1/tasks/{accepted['task_id']}/events", headers=ALICE) for _ in range(2)]

    refused = await api.get("/api/v1/workspaces", headers=ALICE)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert "at most 2 may be open at once" in (await refused.json())["error"]
    assert (await api.get("/api/v1/workspaces", headers=BOB)).status == 200
    for stream in streams:
        assert b"event: run_completed" in await stream.read()

    for _ in range(100):  # the streams' handlers return right after their last frame
        if (await api.get("/api/v1/workspaces", headers=ALICE)).status == 200:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the streams never gave their slots back")


async def test_public_endpoints_have_a_stricter_limit_per_client_address(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, public_rate_limit_per_minute=3)
    for path in ("/", "/health", "/openapi.json"):
        assert (await api.get(path)).status == 200

    refused = await api.get("/docs")
    spoofed = await api.get("/", headers={"X-Forwarded-For": "203.0.113.9"})

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "20"  # 3 a minute: a token every 20 s
    assert (await refused.json())["success"] is False
    assert spoofed.status == 429  # X-Forwarded-For is not trusted by default
    assert (await api.get("/api/v1/workspaces", headers=ALICE)).status == 200


async def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, public_rate_limit_per_minute=1, trusted_proxy_hops=1)

    first = await api.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
    same = await api.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
    other = await api.get("/", headers={"X-Forwarded-For": "198.51.100.2"})
    # A client's own X-Forwarded-For comes first; the proxy appends the address it saw.
    forged = await api.get("/", headers={"X-Forwarded-For": "192.0.2.77, 198.51.100.2"})

    assert [r.status for r in (first, same, other, forged)] == [200, 429, 200, 429]


async def test_a_429_comes_in_the_envelope_of_the_surface_it_hit(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, rate_limit_per_minute=1)
    assert (await api.get("/api/v1/workspaces", headers=ALICE)).status == 200  # the minute's one

    rpc = await api.post("/a2a", json={"jsonrpc": "2.0", "id": "1", "method": "tasks/get"}, headers=ALICE)
    catalogue = await api.get("/api/v1/capabilities", headers=ALICE)

    assert rpc.status == catalogue.status == 429
    assert rpc.headers["Retry-After"] == catalogue.headers["Retry-After"] == "60"
    error = (await rpc.json())["error"]
    assert error["data"]["httpStatus"] == 429 and "rate limit" in error["message"]
    envelope = await catalogue.json()
    assert envelope["code"] == 429 and "rate limit" in envelope["message"]

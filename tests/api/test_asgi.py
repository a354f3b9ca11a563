"""The ASGI bridge on its own: small ASGI applications served from an aiohttp handler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from api.mcp.asgi import ASGIApp, serve_asgi

Client = TestClient[Any, Any]
ClientFactory = Callable[..., Awaitable[Client]]
Scope = dict[str, Any]


async def serve(
    aiohttp_client: ClientFactory, app: ASGIApp, *, middlewares: tuple[Any, ...] = (), **options: Any
) -> Client:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_asgi(app, request, **options)

    web_app = web.Application(middlewares=middlewares)
    web_app.router.add_route("*", "/{tail:.*}", handler)
    return await aiohttp_client(web_app)


@contextlib.asynccontextmanager
async def served(app: ASGIApp, handler_cancellation: bool) -> AsyncIterator[str]:
    """A real server, with aiohttp's handler cancellation on (its test server) or off (run_app's)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_asgi(app, request)

    web_app = web.Application()
    web_app.router.add_get("/", handler)
    runner = web.AppRunner(web_app, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[bytes, int]:
    body, messages = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message["body"]
        messages += 1
        if not message["more_body"]:
            return body, messages


async def respond(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


async def test_the_scope_describes_the_request(aiohttp_client: ClientFactory) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await respond(send, 200, b"ok")

    client = await serve(aiohttp_client, app, scope={"user": "alice"})
    response = await client.post("/a%2Fb/c?x=1&y=%20", headers={"X-Thing": "Value"}, data=b"")

    assert response.status == 200
    scope = seen[0]
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0"
    assert scope["method"] == "POST" and scope["http_version"] == "1.1" and scope["scheme"] == "http"
    assert scope["path"] == "/a/b/c" and scope["raw_path"] == b"/a%2Fb/c"
    assert scope["query_string"] == b"x=1&y=%20" and scope["root_path"] == ""
    assert (b"x-thing", b"Value") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ("127.0.0.1", client.port)
    assert scope["user"] == "alice" and scope["state"] == {}


async def test_the_request_body_is_streamed_to_the_application(aiohttp_client: ClientFactory) -> None:
    received: list[tuple[bytes, int]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        received.append(await read_body(receive))
        await respond(send, 200, b"ok")

    async def chunks() -> Any:
        for _ in range(4):
            yield b"x" * 100_000
            await asyncio.sleep(0.05)

    client = await serve(aiohttp_client, app)
    assert (await client.post("/", data=chunks())).status == 200

    body, messages = received[0]
    assert body == b"x" * 400_000
    assert messages > 1  # it came in pieces, not read whole first


async def test_a_body_a_middleware_already_read_is_still_delivered(aiohttp_client: ClientFactory) -> None:
    @web.middleware
    async def reads_body(request: web.Request, handler: Any) -> web.StreamResponse:
        await request.read()
        return await handler(request)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        body, _ = await read_body(receive)
        await respond(send, 200, body[::-1])

    client = await serve(aiohttp_client, app, middlewares=(reads_body,))
    response = await client.post("/", data=b"abc")

    assert await response.read() == b"cba"


async def test_a_response_streams_with_the_applications_headers(aiohttp_client: ClientFactory) -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [
            (b"content-type", b"text/event-stream"),
            (b"x-a", b"1"),
            (b"x-a", b"2"),
            (b"connection", b"x"),
        ]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"second\n", "more_body": False})

    client = await serve(aiohttp_client, app, headers={"X-Request-ID": "r1"})
    response = await client.get("/")

    assert response.status == 201
    assert response.headers.getall("X-A") == ["1", "2"] and response.headers["X-Request-ID"] == "r1"
    assert (
        response.headers["Content-Type"] == "text/event-stream" and response.headers.get("Connection") != "x"
    )
    assert await response.content.readline() == b"first\n"  # before the application went on
    release.set()
    assert await response.content.read() == b"second\n"


async def test_a_content_length_is_kept(aiohttp_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    response = await (await serve(aiohttp_client, app)).get("/")

    assert response.headers["Content-Length"] == "5" and "Transfer-Encoding" not in response.headers
    assert await response.read() == b"hello"


async def test_receive_answers_disconnect_once_the_response_is_complete(
    aiohttp_client: ClientFactory,
) -> None:
    after: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        await respond(send, 200, b"done")
        after.set_result(await receive())

    response = await (await serve(aiohttp_client, app)).post("/", data=b"x")

    assert await response.read() == b"done"
    assert await asyncio.wait_for(after, 1) == {"type": "http.disconnect"}


@pytest.mark.parametrize("handler_cancellation", [True, False], ids=["canceled-handler", "polled-transport"])
async def test_a_client_that_leaves_is_a_disconnect_not_an_error(
    aiohttp_client: ClientFactory, handler_cancellation: bool
) -> None:
    events: list[str] = []
    finished = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
        events.append((await receive())["type"])  # held until the client has gone
        await send({"type": "http.response.body", "body": b"after\n", "more_body": True})  # dropped
        events.append("wound down")
        finished.set()

    async with served(app, handler_cancellation) as url, aiohttp.ClientSession() as session:
        response = await session.get(url)
        assert await response.content.readline() == b"tick\n"
        response.close()  # drops the connection

        await asyncio.wait_for(finished.wait(), 5)
    assert events == ["http.disconnect", "wound down"]


async def test_an_application_that_ignores_the_disconnect_is_canceled_after_the_grace(
    aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.mcp.asgi.CANCEL_GRACE_SECONDS", 0.2)
    canceled = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            canceled.set()
            raise

    response = await (await serve(aiohttp_client, app)).get("/")
    assert await response.content.readline() == b"tick\n"
    response.close()

    await asyncio.wait_for(canceled.wait(), 5)


async def test_an_error_before_the_response_reaches_the_handler(aiohttp_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise LookupError("no such thing")

    @web.middleware
    async def catches(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except LookupError as e:
            return web.Response(status=404, text=str(e))

    response = await (await serve(aiohttp_client, app, middlewares=(catches,))).get("/")

    assert response.status == 404 and await response.text() == "no such thing"


async def test_an_error_mid_response_drops_the_connection(aiohttp_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        raise RuntimeError("broke")

    response = await (await serve(aiohttp_client, app)).get("/")

    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()  # never a short body taken for a whole one


async def test_a_response_left_unfinished_is_ended(aiohttp_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    response = await (await serve(aiohttp_client, app)).get("/")

    assert await response.read() == b"partial"  # a stream that stopped: its end is sent


async def test_a_response_left_short_of_its_length_is_cut_off(aiohttp_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})

    response = await (await serve(aiohttp_client, app)).get("/")

    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


@pytest.mark.parametrize(
    "messages",
    [
        [],  # no response at all
        [{"type": "http.response.body", "body": b"x"}],  # a body before the start
        [{"type": "websocket.accept"}],
    ],
)
async def test_a_broken_application_is_a_server_error(
    aiohttp_client: ClientFactory, messages: list[dict[str, Any]]
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    response = await (await serve(aiohttp_client, app)).get("/")

    assert response.status == 500

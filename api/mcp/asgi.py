"""Serving an ASGI application from an aiohttp handler (HTTP only: no websockets, no lifespan).

The MCP SDK's transports are ASGI applications; :func:`serve_asgi` runs one for the request an
aiohttp handler got, so our middlewares (request id, errors, auth) stay in front of it:

- the scope is built from the request, plus what the caller adds (e.g. the authenticated user);
- ``receive`` streams the request body, then blocks until the response is complete or the client
  has gone, and answers ``http.disconnect`` (what SSE responses wait for to stop);
- ``send`` maps onto a :class:`aiohttp.web.StreamResponse`, written as it comes (streaming).

A client that goes away is an ``http.disconnect``, never an exception in the application: a write
to it is dropped (as ASGI servers of spec 2.3 do), and when aiohttp cancels the handler for it
(with ``handler_cancellation`` on, as in its test server) the application runs on, shielded, and
gets ``CANCEL_GRACE_SECONDS`` to wind down before it is canceled too. The MCP session manager
needs that: it keeps a session only if the request that opened it completed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import structlog
from aiohttp import web

__all__ = ["ASGIApp", "Message", "Receive", "Send", "serve_asgi"]

log = structlog.get_logger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# aiohttp has no event for a connection lost once the body is read (its handler cancellation is
# off by default), so a receive() waiting for the disconnect looks at the transport this often.
DISCONNECT_POLL_SECONDS = 0.5
CANCEL_GRACE_SECONDS = 5.0
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding"})


async def serve_asgi(
    app: ASGIApp,
    request: web.Request,
    *,
    scope: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Run ``app`` for ``request``; the response it sent (already written).

    ``scope`` adds keys to the ASGI scope; ``headers`` are added to the response. An exception
    before the application started its response propagates (the error middleware answers it);
    after that the response cannot change any more, so it is logged and the connection closed.
    """
    bridge = _Bridge(request, headers or {})
    running = asyncio.ensure_future(bridge.run(app, {**_scope(request), **(scope or {})}))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        await bridge.abandon(running)
        raise
    return await bridge.result()


def _scope(request: web.Request) -> dict[str, Any]:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    own = transport.get_extra_info("sockname") if transport is not None else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.rel_url.raw_path.encode(),
        "query_string": request.rel_url.raw_query_string.encode(),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(own[:2]) if isinstance(own, tuple) else None,
        "state": {},
    }


class _Bridge:
    def __init__(self, request: web.Request, headers: Mapping[str, str]) -> None:
        self._request = request
        self._headers = headers
        self._body_read = False
        self._complete = False
        self.disconnected = False
        # Set when nothing more will be sent: body complete, client gone, or the application ended.
        self.finished = asyncio.Event()
        self.response: web.StreamResponse | None = None

    async def run(self, app: ASGIApp, scope: MutableMapping[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            if self.response is None:
                raise
            log.exception("asgi_app_failed_mid_response", path=self._request.path)
            self.response.force_close()
        finally:
            self.finished.set()

    async def abandon(self, running: asyncio.Future[None]) -> None:
        """The handler was canceled (the client left, or shutdown): let the application wind down."""
        self._lost()
        await asyncio.wait([running], timeout=CANCEL_GRACE_SECONDS)
        if not running.done():
            running.cancel()
            await asyncio.wait([running])
        if not running.cancelled() and running.exception() is not None:
            log.warning(
                "asgi_app_failed_after_disconnect", path=self._request.path, error=repr(running.exception())
            )

    async def receive(self) -> Message:
        if not self._body_read:
            try:
                chunk = await self._next_chunk()
            except OSError:  # aiohttp's "Connection lost", set on the body stream
                self._lost()
            else:
                return {"type": "http.request", "body": chunk, "more_body": not self._body_read}
        await self._wait_disconnect()
        return {"type": "http.disconnect"}

    async def _next_chunk(self) -> bytes:
        request = self._request
        if request.body_exists and not request.can_read_body:
            # A middleware read the body already (idempotency fingerprints it); aiohttp kept it.
            self._body_read = True
            return await request.read()
        chunk = await request.content.readany()
        self._body_read = request.content.at_eof()
        return chunk

    async def _wait_disconnect(self) -> None:
        while not self.finished.is_set():
            transport = self._request.transport
            if transport is None or transport.is_closing():
                self._lost()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), DISCONNECT_POLL_SECONDS)

    def _lost(self) -> None:
        self.disconnected = True
        self.finished.set()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._start(message)
        elif kind == "http.response.body":
            await self._body(message)
        else:
            raise RuntimeError(f"unsupported ASGI message type {kind!r}")

    async def _start(self, message: Message) -> None:
        if self.response is not None:
            raise RuntimeError("the ASGI application started its response twice")
        response = web.StreamResponse(status=message["status"])
        for raw_name, raw_value in message.get("headers", ()):
            name = raw_name.decode("latin-1")
            if name.lower() not in _HOP_BY_HOP:
                response.headers.add(name, raw_value.decode("latin-1"))
        response.headers.update(self._headers)
        self.response = response
        # Headers go out now: a stream (SSE) may send no body for a long time.
        await self._write(lambda: response.prepare(self._request))

    async def _body(self, message: Message) -> None:
        if self.response is None:
            raise RuntimeError("the ASGI application sent a body before starting its response")
        if self._complete:
            raise RuntimeError("the ASGI application sent a body after its response was complete")
        response = self.response
        body = message.get("body", b"")
        if body:
            await self._write(lambda: response.write(body))
        if not message.get("more_body", False):
            self._complete = True
            await self._write(response.write_eof)
            self.finished.set()

    async def _write(self, step: Callable[[], Awaitable[Any]]) -> None:
        if self.disconnected:
            return
        try:
            await step()
        except OSError:  # the client went away; the application learns it from receive()
            self._lost()

    async def result(self) -> web.StreamResponse:
        if self.response is None:
            raise RuntimeError("the ASGI application returned without sending a response")
        if not self._complete and not self.disconnected:
            # Ended mid-body (e.g. a stream canceled at shutdown): end it, then drop the connection,
            # so a client never takes a cut body for a whole one.
            self.response.force_close()
            await self._write(self.response.write_eof)
        return self.response

"""The MCP server for MCP hosts: Streamable HTTP at ``/mcp``, the older HTTP+SSE transport at ``/mcp/sse``.

The protocol is the official ``mcp`` package's (its low-level ``Server``, Streamable HTTP session
manager and SSE transport, which are ASGI applications), served through :mod:`api.mcp.asgi` behind our
middlewares: a request reaches it authenticated (Bearer or X-Api-Key), rate-limited, and its HTTP
errors are JSON-RPC error objects (the SDK's plain-text ones too: :mod:`api.mcp.http_errors`). The user goes into the ASGI scope, where the transports bind
each session to the user who opened it and the tools read who is calling.

Sessions: Streamable HTTP sessions are the manager's (``Mcp-Session-Id``; ended by the client's
DELETE, or after 30 idle minutes); an SSE session lasts as long as its GET stream. When a session
ends, its sandbox is removed (see :mod:`api.mcp.workspace_tools`). Requests of protocol 2026-07-28
carry no session: each is served on its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from aiohttp import web
from aiohttp.typedefs import Handler
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request

from api.mcp.agent_tools import AgentTools
from api.mcp.asgi import ASGIApp, Message, Receive, serve_asgi
from api.mcp.http_errors import json_rpc_errors
from api.mcp.market_tools import MarketTools
from api.mcp.tools import Caller, McpTools
from api.mcp.workspace_tools import WorkspaceTools
from api.rest.meta import API_VERSION
from api.web.errors import register_envelope
from api.web.jsonrpc import JsonRpcHttpError, http_error_body
from api.web.keys import (
    CAPABILITIES,
    PLACEMENTS,
    REQUEST_ID,
    SANDBOXES,
    SETTINGS,
    STORE,
    TASK_STARTER,
    TASKS,
    USER,
    WORKSPACES,
)
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.errors import UnavailableError
from runtime.platform.search import MarketSearch
from runtime.workspaces.sandboxes import WorkspaceSandboxes

__all__ = ["MCP_PATH", "MESSAGES_PATH", "SSE_PATH", "mcp_surface", "setup_mcp_routes"]

MCP_PATH = "/mcp"
SSE_PATH = "/mcp/sse"
MESSAGES_PATH = "/mcp/messages"

INSTRUCTIONS = (
    "agent-worker: an agent runtime with sandboxes. run_agent gives its agent a task and returns the "
    "answer (or a task id to follow with get_task). run_bash and run_python run commands yourself in "
    "this session's sandbox, which persists for the session. The file tools read and write the "
    "same workspace that the sandbox sees at /workspace and the agent works in."
)

STOP_GRACE_SECONDS = 5.0  # for open SSE streams to close at shutdown, before they are canceled

SessionOf = Callable[[ServerRequestContext[Any, Any], Request], str | None]


def _caller(ctx: ServerRequestContext[Any, Any], session_of: SessionOf) -> Caller:
    request = ctx.request
    user = request.scope.get("user") if isinstance(request, Request) else None
    if not isinstance(request, Request) or not isinstance(user, AuthenticatedUser):
        raise MCPError(types.INTERNAL_ERROR, "the request carries no user")  # _serve puts one in
    return Caller(owner=user.username, session=session_of(ctx, request))


def _streamable_session(ctx: ServerRequestContext[Any, Any], request: Request) -> str | None:
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None  # a 2026-07-28 request has no session, whatever header it carries
    return request.headers.get(MCP_SESSION_ID_HEADER)


class McpSurface:
    """The MCP server's transports and their lifecycle; :meth:`start` before serving, :meth:`stop` after."""

    def __init__(
        self,
        tools: McpTools,
        end_session: Callable[[str, str], None],
        *,
        max_body: int,
        allowed_origins: frozenset[str],
    ) -> None:
        self._tools = tools
        self._end_session = end_session
        self._allowed_origins = allowed_origins
        self._manager = StreamableHTTPSessionManager(
            app=self._server(_streamable_session),
            max_request_body_size=max_body,
        )
        self._sse = SseServerTransport(MESSAGES_PATH, max_request_body_size=max_body)
        self._sse_streams: dict[asyncio.Task[Any], anyio.CancelScope] = {}
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def _server(self, session_of: SessionOf) -> Server[Any]:
        async def list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self._tools.definitions())

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            if params.name not in self._tools:
                raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}")
            return await self._tools.call(_caller(ctx, session_of), params.name, params.arguments)

        return Server(
            "agent-worker",
            version=API_VERSION,
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )

    async def start(self) -> None:
        ready = asyncio.get_running_loop().create_future()
        # The manager's task group lives in a task of its own: it must be left in the task that
        # entered it, and aiohttp may run start-up and clean-up in different tasks.
        self._runner = asyncio.create_task(self._run_manager(ready), name="mcp-sessions")
        await asyncio.wait([ready, self._runner], return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            await self._runner  # raises why it stopped

    async def _run_manager(self, ready: asyncio.Future[None]) -> None:
        async with self._manager.run():
            ready.set_result(None)
            await self._stopping.wait()

    async def stop(self) -> None:
        """End every session: open streams close, running tool calls are canceled."""
        self._stopping.set()  # an SSE stream takes it for its client's disconnect, and winds down
        if self._sse_streams:
            _, late = await asyncio.wait(self._sse_streams, timeout=STOP_GRACE_SECONDS)
            for task in late:
                self._sse_streams[task].cancel()
        if self._runner is not None:
            await self._runner

    async def streamable(self, request: web.Request) -> web.StreamResponse:
        response = await self._serve(self._manager.handle_request, request)
        session = request.headers.get(MCP_SESSION_ID_HEADER)
        if request.method == "DELETE" and session and response.status < 300:
            self._end_session(request[USER], session)
        return response

    async def sse_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(self._sse_session(request[USER]), request)

    async def sse_message(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(self._sse.handle_post_message, request)

    def _sse_session(self, owner: str) -> ASGIApp:
        session = uuid.uuid4().hex
        server = self._server(lambda ctx, request: session)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            task = asyncio.current_task()
            assert task is not None
            with anyio.CancelScope() as self._sse_streams[task]:
                try:
                    async with self._sse.connect_sse(scope, self._until_stopping(receive), send) as streams:
                        await server.run(streams[0], streams[1], server.create_initialization_options())
                finally:
                    del self._sse_streams[task]
                    self._end_session(owner, session)

        return app

    def _until_stopping(self, receive: Receive) -> Receive:
        """``receive``, answering a disconnect once the worker stops (canceling the stream instead
        would skip the SSE transport's own clean-up: it closes its streams only on a disconnect)."""

        async def receive_or_stop() -> Message:
            message = asyncio.ensure_future(receive())
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait([message, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if message.done():
                return message.result()
            message.cancel()
            return {"type": "http.disconnect"}

        return receive_or_stop

    async def _serve(self, app: ASGIApp, request: web.Request) -> web.StreamResponse:
        if self._stopping.is_set():
            raise UnavailableError("the worker is shutting down; connect again after it restarts")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._allowed_origins:
            # The MCP spec's defence against DNS rebinding: a web page's request carries its Origin.
            raise web.HTTPForbidden(text=f"Origin {origin} is not allowed; see AGENT_MCP_ALLOWED_ORIGINS")
        user = AuthenticatedUser(AccessToken(token="", client_id=request[USER], scopes=[]))
        return await serve_asgi(
            json_rpc_errors(app), request, scope={"user": user}, headers={"X-Request-ID": request[REQUEST_ID]}
        )


_SURFACE = web.AppKey("mcp_surface", McpSurface)


@asynccontextmanager
async def mcp_surface(app: web.Application) -> AsyncIterator[None]:
    """The MCP server and its session sandboxes, built from the services already under the app's keys."""
    settings = app[SETTINGS]
    sandboxes = WorkspaceSandboxes(
        app[SANDBOXES],
        settings.mcp_sandbox_idle_timeout,
        kind="mcp",
        max_per_owner=settings.mcp_sandboxes_per_user,
        placements=app[PLACEMENTS],
    )
    workspace_tools = WorkspaceTools(
        app[WORKSPACES], sandboxes, settings.loop_settings().tools, settings.mcp_max_file_bytes
    )
    agent_tools = AgentTools(
        app[TASK_STARTER], app[TASKS], app[STORE], app[CAPABILITIES], settings.mcp_wait_seconds
    )
    market_tools = MarketTools(MarketSearch(app[STORE], app[CAPABILITIES].global_ones()))
    tools = McpTools([*agent_tools.tools(), *workspace_tools.tools(), *market_tools.tools()])
    surface = McpSurface(
        tools,
        workspace_tools.end_session,
        max_body=settings.max_request_bytes,
        allowed_origins=frozenset(o.strip() for o in settings.mcp_allowed_origins.split(",") if o.strip()),
    )
    await surface.start()
    app[_SURFACE] = surface
    try:
        yield
    finally:
        await surface.stop()
        await sandboxes.aclose()


async def _stop(app: web.Application) -> None:
    # on_shutdown, before aiohttp waits for open requests: the sessions' streams must end first.
    if _SURFACE in app:
        await app[_SURFACE].stop()


async def _streamable(request: web.Request) -> web.StreamResponse:
    return await request.app[_SURFACE].streamable(request)


async def _sse_stream(request: web.Request) -> web.StreamResponse:
    return await request.app[_SURFACE].sse_stream(request)


async def _sse_message(request: web.Request) -> web.StreamResponse:
    return await request.app[_SURFACE].sse_message(request)


_JSONRPC_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object", "description": "A JSON-RPC 2.0 message."}}},
}
_SSE: dict[str, Any] = {"text/event-stream": {"schema": {"type": "string"}}}
_ANSWER = {"description": "The answer: JSON, or an SSE stream", "content": {"application/json": {}, **_SSE}}
_STREAM = {"200": {"description": "SSE stream of the server's messages", "content": _SSE}}
_ACCEPTED = {"202": {"description": "Accepted (a notification, or a response to the server)"}}

# The transports' own (400 / 404 / 405 / 406 / 409 / 415: see the MCP SDK), and ours: 403 for an
# Origin not allowed, 413, 503 while shutting down.
_ERRORS = (400, 403, 404, 405, 406, 409, 413, 415, 503)

_ROUTES: list[tuple[str, str, str, dict[str, Any], Handler]] = [
    (
        "POST",
        MCP_PATH,
        "MCP Streamable HTTP: send a message (initialize opens a session)",
        {"200": _ANSWER, **_ACCEPTED},
        _streamable,
    ),
    ("GET", MCP_PATH, "MCP Streamable HTTP: the session's stream of server messages", _STREAM, _streamable),
    (
        "DELETE",
        MCP_PATH,
        "MCP Streamable HTTP: end the session",
        {"200": {"description": "Ended"}},
        _streamable,
    ),
    (
        "GET",
        SSE_PATH,
        "MCP HTTP+SSE: open a session (its first event says where to POST)",
        _STREAM,
        _sse_stream,
    ),
    (
        "POST",
        MESSAGES_PATH,
        "MCP HTTP+SSE: send a message to the session of ?session_id=",
        _ACCEPTED,
        _sse_message,
    ),
]


def setup_mcp_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    """The routes; :func:`mcp_surface` serves them once the services it takes its parts from exist."""
    register_envelope(app, MCP_PATH, http_error_body)
    app.on_shutdown.append(_stop)
    for method, path, summary, responses, handler in _ROUTES:
        operation = Operation(
            method,
            path,
            summary,
            "mcp",
            errors=_ERRORS,
            description="The Model Context Protocol; see docs/mcp.md. Errors are JSON-RPC error objects.",
            responses_raw=responses,
            request_raw=_JSONRPC_BODY if method == "POST" else {},
            error_model=JsonRpcHttpError,
        )
        registry.add(app.router, operation, handler)

"""The MCP server, through the official ``mcp`` client over both transports, against the real app."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import docker
import httpx2
import pytest
from aiohttp.test_utils import TestClient
from mcp import ClientSession
from mcp.client import Client as McpClient
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from runtime.engine.tools import ToolConfig, execute_tool_call
from sandbox.base import MAX_SOURCE_BYTES, Sandbox
from sandbox.docker_engine.backend import LABEL_RUN
from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker, StartWorker
from tests.conftest import instance_containers
from tests.fakes import Call, Hang, Reply, ScriptedModelServer, ToolCalls
from tests.served_worker import SEED_CLIENTS, run_seed_client

pytestmark = pytest.mark.both_engines  # every route here reads or writes the store

Transport = Literal["streamable", "sse"]
TRANSPORTS: list[Transport] = ["streamable", "sse"]

TOOLS = {
    "run_agent",
    "get_task",
    "cancel_task",
    "search_capabilities",
    "uuagent_search",
    "run_bash",
    "run_python",
    "list_files",
    "read_file",
    "write_file",
}
ACCEPT = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
SEED_CLIENT = SEED_CLIENTS / "seed_000_mcp.py"


def base_of(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


def http_client(headers: dict[str, str]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))


@asynccontextmanager
async def connect(
    base: str, transport: Transport, headers: dict[str, str] = ALICE
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session; leaving it ends the session (DELETE, or the SSE stream closes)."""
    async with AsyncExitStack() as stack:
        if transport == "sse":
            read, write = await stack.enter_async_context(sse_client(f"{base}/mcp/sse", headers=headers))
        else:
            http = await stack.enter_async_context(http_client(headers))
            read, write = await stack.enter_async_context(
                streamable_http_client(f"{base}/mcp", http_client=http)
            )
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


async def call(session: ClientSession, name: str, **arguments: Any) -> Any:
    result = await session.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def refused(session: ClientSession, name: str, **arguments: Any) -> str:
    result = await session.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


def mcp_sandboxes(docker_client: docker.DockerClient, instance_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in instance_containers(docker_client, instance_id)
        if c["Labels"].get(LABEL_RUN, "").startswith("mcp:")
    ]


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


async def never_opened() -> Sandbox:
    raise AssertionError("a refused call must not ask for a sandbox")


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the condition never held")


# --- protocol -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_initialize_and_list_tools(api: TestClient[Any, Any], transport: Transport) -> None:
    async with connect(base_of(api), transport) as session:
        info = session.initialize_result
        tools = (await session.list_tools()).tools

    assert info is not None and info.server_info.name == "agent-worker"
    assert info.capabilities.tools is not None and "run_agent" in (info.instructions or "")
    assert {tool.name for tool in tools} == TOOLS
    for tool in tools:
        assert tool.description and tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.input_schema.get("additionalProperties") is False  # misspelt arguments are refused
    bash = next(tool for tool in tools if tool.name == "run_bash")
    assert bash.input_schema["required"] == ["command"] and "60 s" in (bash.description or "")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_calls(api: TestClient[Any, Any], transport: Transport) -> None:
    async with connect(base_of(api), transport) as session:
        with pytest.raises(MCPError, match="unknown tool 'nope'"):
            await session.call_tool("nope", {})
        assert "comand: Extra inputs are not permitted" in await refused(session, "run_bash", comand="ls")
        assert "NUL byte" in await refused(session, "run_python", code="print(1)\x00")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_commands_are_refused_as_the_agent_loop_refuses_them(
    api: TestClient[Any, Any], transport: Transport
) -> None:
    wide = "€" * (MAX_SOURCE_BYTES // 3 + 1)  # under the limit in characters, over it in bytes
    cases = [
        ("run_bash", "command", "echo a\x00b", "the command contains a NUL byte"),
        ("run_python", "code", f"# {wide}", f"bytes; at most {MAX_SOURCE_BYTES} are allowed"),
    ]
    async with connect(base_of(api), transport) as session:
        for tool, field, source, refusal in cases:
            text = await refused(session, tool, **{field: source})
            loop = await execute_tool_call(
                tool.replace("run_", "execute_"), json.dumps({field: source}), never_opened, ToolConfig()
            )
            assert text.startswith(f"invalid arguments for {tool}: {field}: ") and refusal in text
            # One validation: what follows "invalid arguments for <tool>: " is the agent loop's words.
            assert loop.error is not None and text.split(": ", 1)[1] == loop.error.split(": ", 1)[1]


# --- the session's sandbox ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_sessions_sandbox_persists_between_calls_and_goes_with_the_session(
    api: TestClient[Any, Any], transport: Transport, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with connect(base_of(api), transport) as session:
        assert mcp_sandboxes(docker_client, instance_id) == []  # started on the first command only
        first = await call(session, "run_bash", command="echo kept > notes.txt; echo $$ > /tmp/marker; pwd")
        assert first["returncode"] == 0 and first["stdout"] == "/workspace\n"
        second = await call(
            session,
            "run_python",
            code="print(open('notes.txt').read().strip(), open('/tmp/marker').read() != '')",
        )
        assert second["stdout"] == "kept True\n"  # /tmp is the container's own: the same container
        failed = await call(session, "run_bash", command="echo oops >&2; exit 3")
        assert (failed["success"], failed["returncode"], failed["stderr"]) == (False, 3, "oops\n")
        assert len(mcp_sandboxes(docker_client, instance_id)) == 1

    await eventually(lambda: mcp_sandboxes(docker_client, instance_id) == [])
    files = await (await api.get("/api/v1/files", headers=ALICE)).json()
    assert [entry["path"] for entry in files["files"]] == ["notes.txt"]  # the files stay


async def test_each_session_has_its_own_sandbox_on_the_same_files(
    api: TestClient[Any, Any], docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with connect(base_of(api), "streamable") as one, connect(base_of(api), "sse") as two:
        await call(one, "run_bash", command="touch /tmp/one; echo shared > shared.txt")
        seen = await call(two, "run_bash", command="ls /tmp; cat shared.txt")
        assert seen["stdout"] == "shared\n"
        assert len(mcp_sandboxes(docker_client, instance_id)) == 2

    await eventually(lambda: mcp_sandboxes(docker_client, instance_id) == [])


async def test_an_idle_sandbox_is_removed_and_the_next_command_gets_a_fresh_one(
    make_client: ClientMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, mcp_sandbox_idle_timeout=0.5)
    async with connect(base_of(api), "streamable") as session:
        await call(session, "run_bash", command="touch /tmp/marker kept.txt")
        await eventually(lambda: mcp_sandboxes(docker_client, instance_id) == [])

        again = await call(session, "run_bash", command="ls /tmp; ls")
        assert again["stdout"] == "kept.txt\n"


async def test_sandboxes_per_user_are_capped(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, mcp_sandboxes_per_user=1)
    async with connect(base_of(api), "streamable") as one, connect(base_of(api), "sse") as two:
        await call(one, "run_bash", command="true")
        assert "1 mcp sandboxes are open for this user" in await refused(two, "run_bash", command="true")
        async with connect(base_of(api), "sse", BOB) as other_user:
            await call(other_user, "run_bash", command="true")


async def test_sessionless_requests_get_a_sandbox_per_call(
    api: TestClient[Any, Any], docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with (
        http_client(ALICE) as http,
        McpClient(streamable_http_client(f"{base_of(api)}/mcp", http_client=http)) as client,
    ):
        assert client.protocol_version == "2026-07-28"  # mode "auto" chose it: no session
        first = await client.call_tool("run_bash", {"command": "touch /tmp/marker kept.txt"})
        second = await client.call_tool("run_bash", {"command": "ls /tmp; ls"})

    assert not first.is_error and second.structured_content["stdout"] == "kept.txt\n"
    await eventually(lambda: mcp_sandboxes(docker_client, instance_id) == [])


# --- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_write_list_and_read_files(api: TestClient[Any, Any], transport: Transport) -> None:
    async with connect(base_of(api), transport) as session:
        assert await call(session, "write_file", path="src/hello.py", content="print('héllo')\n") == {
            "path": "src/hello.py",
            "size": 16,
        }
        binary = bytes(range(256))
        await call(
            session,
            "write_file",
            path="data.bin",
            content=base64.b64encode(binary).decode(),
            encoding="base64",
        )
        ran = await call(session, "run_bash", command="python3 src/hello.py; wc -c < data.bin")
        assert ran["stdout"] == "héllo\n256\n"

        listing = await call(session, "list_files")
        assert [(e["path"], e["type"], e["size"]) for e in listing["files"]] == [
            ("data.bin", "file", 256),
            ("src", "dir", 0),
            ("src/hello.py", "file", 16),
        ]
        assert [e["path"] for e in (await call(session, "list_files", path="src"))["files"]] == [
            "src/hello.py"
        ]

        text = await call(session, "read_file", path="src/hello.py")
        assert (text["encoding"], text["content"], text["size"], text["next_offset"]) == (
            "utf-8",
            "print('héllo')\n",
            16,
            None,
        )
        raw = await call(session, "read_file", path="data.bin")
        assert raw["encoding"] == "base64" and base64.b64decode(raw["content"]) == binary

        # In parts: a character cut by the end of a part is left for the next one.
        part = await call(session, "read_file", path="src/hello.py", max_bytes=9)
        assert (part["content"], part["next_offset"]) == ("print('h", 8)
        rest = await call(session, "read_file", path="src/hello.py", offset=8)
        assert (rest["content"], rest["next_offset"]) == ("éllo')\n", None)

    download = await api.get("/api/v1/files/download?path=src/hello.py", headers=ALICE)
    assert await download.text() == "print('héllo')\n"  # the files API sees the same workspace


async def test_file_paths_stay_in_the_workspace_and_limits_hold(make_client: ClientMaker) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, mcp_max_file_bytes=10)
    async with connect(base_of(api), "streamable") as session:
        await call(session, "write_file", path="dir/f.txt", content="0123456789")
        await call(session, "run_bash", command="ln -s /etc link")

        assert "contains '..'" in await refused(session, "read_file", path="../x")
        assert "is absolute" in await refused(session, "write_file", path="/etc/x", content="")
        assert "is a symlink" in await refused(session, "read_file", path="link/passwd")
        assert "is a symlink" in await refused(session, "write_file", path="link/x", content="")
        assert "dir is a directory" in await refused(session, "write_file", path="dir", content="")
        assert "not found" in await refused(session, "read_file", path="missing.txt")
        assert "only files" in await refused(session, "read_file", path="dir")
        assert "at most 10 can be written" in await refused(
            session, "write_file", path="big", content="x" * 11
        )
        assert "not valid base64" in await refused(
            session, "write_file", path="b", content="!", encoding="base64"
        )

        capped = await call(session, "read_file", path="dir/f.txt", max_bytes=1000)
        assert capped["content"] == "0123456789"
    bob_files = await (await api.get("/api/v1/files", headers=BOB)).json()
    assert bob_files["files"] == []  # each user's own workspace


# --- the agent ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_run_agent_answers_and_continues_the_conversation(
    api: TestClient[Any, Any], transport: Transport, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo from-agent > agent.txt"})]),
            Reply("I wrote agent.txt."),
            Reply("It says from-agent."),
        ]
    )
    async with connect(base_of(api), transport) as session:
        first = await call(session, "run_agent", message="write agent.txt")
        assert (first["status"], first["answer"], first["error"], first["follow"]) == (
            "completed",
            "I wrote agent.txt.",
            None,
            None,
        )
        assert first["iterations"] == 2
        written = await call(session, "read_file", path="agent.txt")  # the agent's workspace is ours
        assert written["content"] == "from-agent\n"

        second = await call(
            session, "run_agent", message="what does it say?", conversation_id=first["conversation_id"]
        )
        assert (
            second["answer"] == "It says from-agent."
            and second["conversation_id"] == first["conversation_id"]
        )

    history = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "user"]
    assert history == ["write agent.txt", "what does it say?"]
    model_server.assert_script_consumed()


async def test_a_long_task_returns_its_id_to_follow_and_can_be_canceled(
    api: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(1.5), Reply("finally"), Hang(60)])
    async with connect(base_of(api), "streamable") as session:
        started = await call(session, "run_agent", message="take your time", wait_seconds=0.2)
        assert started["status"] == "running" and started["answer"] is None
        assert "get_task" in started["follow"] and started["task_id"] in started["follow"]
        done = await call(session, "get_task", task_id=started["task_id"], wait_seconds=30)
        assert (done["status"], done["answer"], done["follow"]) == ("completed", "finally", None)

        stuck = await call(session, "run_agent", message="hang", wait_seconds=0)
        canceled = await call(session, "cancel_task", task_id=stuck["task_id"])
        assert (canceled["status"], canceled["error"]) == ("canceled", "canceled by the user")

    status = await (await api.get(f"/api/v1/tasks/{stuck['task_id']}", headers=ALICE)).json()
    assert status["data"]["status"] == "canceled"  # the same task the REST API sees


async def test_the_wait_is_bounded_by_the_setting(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, mcp_wait_seconds=0.3)
    model_server.extend([Hang(2), Reply("late")])
    async with connect(base_of(api), "sse") as session:
        started = await call(session, "run_agent", message="slow", wait_seconds=600)
        assert started["status"] == "running" and "up to 0.3 s a call" in started["follow"]
        for _ in range(50):
            followed = await call(session, "get_task", task_id=started["task_id"], wait_seconds=600)
            if followed["status"] == "completed":
                break
        assert followed["answer"] == "late"


async def test_run_agent_refusals(api: TestClient[Any, Any], model_server: ScriptedModelServer) -> None:
    model_server.extend([Hang(60)])
    async with connect(base_of(api), "streamable") as session, connect(base_of(api), "sse", BOB) as bob:
        running = await call(session, "run_agent", message="hang", wait_seconds=0)
        assert "already running for this user" in await refused(session, "run_agent", message="again")
        assert "not found" in await refused(bob, "get_task", task_id=running["task_id"])
        assert "not found" in await refused(bob, "cancel_task", task_id=running["task_id"])
        assert "capability 'nope' not found" in await refused(
            bob, "run_agent", message="x", capability_id="nope"
        )
        assert "run_mode: the capability sets" in await refused(
            bob, "run_agent", message="x", capability_id="general", run_mode="deep"
        )
        assert "not found" in await refused(bob, "run_agent", message="x", conversation_id="conv_nope")
        await call(session, "cancel_task", task_id=running["task_id"])


async def test_run_agent_as_a_capability(
    api: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("42")])
    async with connect(base_of(api), "sse") as session:
        done = await call(session, "run_agent", message="6 * 7?", capability_id="python-analyst")

    assert done["answer"] == "42"
    request = model_server.requests[-1]
    assert "careful data analyst" in request["messages"][0]["content"]
    assert [tool["function"]["name"] for tool in request["tools"]] == ["execute_python"]


async def test_search_capabilities(api: TestClient[Any, Any]) -> None:
    async with connect(base_of(api), "streamable") as session:
        everything = await call(session, "search_capabilities")
        assert [c["id"] for c in everything["items"]] == ["general", "python-analyst", "sandbox-report"]
        assert everything["total"] == 3 and everything["has_more"] is False
        found = await call(session, "search_capabilities", query="PYTHON data")
        assert [c["id"] for c in found["items"]] == ["python-analyst"]
        by_category = await call(session, "search_capabilities", category="diagnostics")
        assert [c["id"] for c in by_category["items"]] == ["sandbox-report"]
        page = await call(session, "search_capabilities", page=2, page_size=2)
        assert ([c["id"] for c in page["items"]], page["total"], page["has_more"]) == (
            ["sandbox-report"],
            3,
            False,
        )
        assert set(everything["items"][0]) == {"id", "name", "description", "category"}


# --- auth ---------------------------------------------------------------------------------------


async def test_every_mcp_route_needs_a_token_and_errors_are_json_rpc(api: TestClient[Any, Any]) -> None:
    for method, path in [
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("GET", "/mcp/sse"),
        ("POST", "/mcp/messages"),
    ]:
        response = await api.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert response.status == 401
        body = await response.json()
        assert body["jsonrpc"] == "2.0" and body["id"] is None
        assert body["error"]["data"] == {"httpStatus": 401} and body["error"]["message"] == "invalid token"
    assert (await api.put("/mcp", headers=ALICE)).status == 405

    with pytest.raises(BaseException) as refusal:
        async with connect(base_of(api), "streamable", {}):
            pass
    [error] = leaves(refusal.value)  # the client hands on our JSON-RPC error
    assert isinstance(error, MCPError) and error.error.data == {"httpStatus": 401}
    assert error.message.startswith("missing credentials")
    with pytest.raises(BaseException) as refusal:
        async with connect(base_of(api), "sse", {"Authorization": "Bearer wrong"}):
            pass
    [error] = leaves(refusal.value)
    assert isinstance(error, httpx2.HTTPStatusError) and error.response.status_code == 401


async def test_the_api_key_header_works(api: TestClient[Any, Any]) -> None:
    async with connect(base_of(api), "streamable", {"X-Api-Key": "tok-a"}) as session:
        await call(session, "write_file", path="a.txt", content="a")

    assert (await api.get("/api/v1/files/download?path=a.txt", headers=ALICE)).status == 200


async def test_a_session_is_usable_by_its_user_only(api: TestClient[Any, Any]) -> None:
    opened = await api.post("/mcp", json=INITIALIZE, headers={**ALICE, **ACCEPT})
    assert opened.status == 200
    await opened.read()
    in_session = {**ACCEPT, "mcp-session-id": opened.headers["mcp-session-id"]}
    list_tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    stolen = await api.post("/mcp", json=list_tools, headers={**BOB, **in_session})
    assert stolen.status == 404 and (await stolen.json())["error"]["message"] == "Session not found"
    own = await api.post("/mcp", json=list_tools, headers={**ALICE, **in_session})
    assert own.status == 200 and "run_agent" in await own.text()
    ended = await api.delete("/mcp", headers={**ALICE, **in_session})
    assert ended.status == 200


async def test_a_browser_origin_must_be_allowed(make_client: ClientMaker) -> None:
    api = await make_client(
        api_keys=TWO_USER_KEYS, mcp_allowed_origins="http://ok.example, http://also.example"
    )
    evil = {**ALICE, "Origin": "http://evil.example"}

    refused = await api.post("/mcp", json=INITIALIZE, headers={**evil, **ACCEPT})
    assert refused.status == 403
    assert (await refused.json())["error"]["message"].startswith("Origin http://evil.example is not allowed")
    assert (await api.get("/mcp/sse", headers=evil)).status == 403
    allowed = await api.post(
        "/mcp", json=INITIALIZE, headers={**ALICE, **ACCEPT, "Origin": "http://also.example"}
    )
    assert allowed.status == 200


# --- the served worker --------------------------------------------------------------------------


async def test_the_served_worker_removes_sandboxes_when_sessions_end_and_at_sigterm(
    start_worker: StartWorker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    base, process = await start_worker(AGENT_API_KEYS=TWO_USER_KEYS)
    for transport in TRANSPORTS:  # served as in production: a client's leaving is seen on its connection
        async with connect(base, transport) as session:
            await call(session, "run_bash", command="true")
        await eventually(lambda: mcp_sandboxes(docker_client, instance_id) == [])

    sessions = AsyncExitStack()
    try:
        for transport in TRANSPORTS:
            session = await sessions.enter_async_context(connect(base, transport))
            await call(session, "run_bash", command="true")
        assert len(mcp_sandboxes(docker_client, instance_id)) == 2

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        assert instance_containers(docker_client, instance_id) == []
    finally:
        with contextlib.suppress(Exception):  # ending the sessions fails: the server is gone
            await sessions.aclose()


async def test_copied_mcp_demo_client(start_worker: StartWorker, tmp_path: Path) -> None:
    capabilities = tmp_path / "capabilities.json"
    capability = {
        "id": "analyst",
        "name": "数据分析助手",
        "description": "数据分析: computes and checks figures with Python.",
        "category": "data-analysis",
    }
    capabilities.write_text(json.dumps([capability]))
    base, _ = await start_worker(AGENT_API_KEYS="seed:tok-seed", AGENT_CAPABILITIES_FILE=str(capabilities))

    env = {"BASE_URL": base, "API_KEY": "tok-seed", "USER_ID": "seed"}
    out = await run_seed_client([sys.executable, str(SEED_CLIENT)], env, timeout=60)

    text = out
    assert all(f"{name}: " in text for name in TOOLS)  # the seed prints every tool with its description
    assert "is_error=False" in text and "'id': 'analyst'" in text and "'query': '数据分析'" in text


async def test_the_transports_plain_and_empty_errors_are_json_rpc_errors(api: TestClient[Any, Any]) -> None:
    wrong_type = await api.post("/mcp", data="{}", headers={**ALICE, "Content-Type": "text/plain"})
    no_session = await api.post("/mcp/messages", json={}, headers=ALICE)
    modern = {**ALICE, "MCP-Protocol-Version": "2026-07-28", "Accept": "text/html"}
    not_acceptable = await api.post("/mcp", json={}, headers=modern)  # the SDK sends no body

    assert wrong_type.status == 400
    assert await wrong_type.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Invalid Content-Type header", "data": {"httpStatus": 400}},
    }
    assert no_session.status == 400
    assert (await no_session.json())["error"]["message"] == "session_id is required"
    assert not_acceptable.status == 406
    assert (await not_acceptable.json())["error"] == {
        "code": -32000,
        "message": "Not Acceptable",
        "data": {"httpStatus": 406},
    }


async def test_the_mcp_routes_are_in_the_openapi_document(api: TestClient[Any, Any]) -> None:
    document = await (await api.get("/openapi.json")).json()

    assert set(document["paths"]["/mcp"]) == {"get", "post", "delete"}
    assert set(document["paths"]["/mcp/sse"]) == {"get"} and set(document["paths"]["/mcp/messages"]) == {
        "post"
    }
    unauthorized = document["paths"]["/mcp"]["post"]["responses"]["401"]["content"]["application/json"]
    assert unauthorized["schema"]["$ref"] == "#/components/schemas/JsonRpcHttpError"

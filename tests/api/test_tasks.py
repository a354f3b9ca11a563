"""The task API: conversations, messages, offset polling, SSE, cancel, limits."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import docker
import docker.errors
import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker
from tests.conftest import instance_containers
from tests.fakes import Call, Error, Hang, Reply, ScriptedModelServer, ToolCalls

Client = TestClient[Any, Any]
pytestmark = pytest.mark.both_engines  # the store behind every route here: SQLite and PostgreSQL


async def post(
    client: Client, path: str, body: Any = None, headers: dict[str, str] = ALICE, status: int = 200
) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def get(client: Client, path: str, headers: dict[str, str] = ALICE, status: int = 200) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def follow(
    client: Client, task_id: str, headers: dict[str, str] = ALICE
) -> tuple[str, list[dict[str, Any]]]:
    """The documented poller: loop while status == "running", from = next_offset."""
    offset, events = 0, []
    for _ in range(600):
        data = (await get(client, f"/api/v1/tasks/{task_id}?from={offset}&wait=2", headers))["data"]
        events.extend(data["events"])
        offset = data["next_offset"]
        if data["status"] not in ("running", "pending"):
            return data["status"], events
    raise AssertionError("task never finished")


def processes_matching(docker_client: docker.DockerClient, container: str, text: str) -> list[list[str]]:
    try:
        processes = docker_client.api.top(container)["Processes"] or []
    except docker.errors.APIError as e:
        # 409: created but not (or no longer) running; 404: removed since it was listed
        if e.status_code not in (404, 409):
            raise
        return []
    return [p for p in processes if text in " ".join(p)]


async def wait_for_process(docker_client: docker.DockerClient, instance_id: str, text: str) -> str:
    """The id of this test's sandbox once a process matching ``text`` runs in it."""
    for _ in range(300):
        for container in instance_containers(docker_client, instance_id):
            if processes_matching(docker_client, container["Id"], text):
                return str(container["Id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no sandbox process matching {text!r}")


async def start(client: Client, message: str = "go", ws: str | None = None, **extra: Any) -> dict[str, Any]:
    prefix = f"/api/v1/workspaces/{ws}" if ws else "/api/v1"
    conversation = await post(client, f"{prefix}/conversations")
    body = {"conversation_id": conversation["conversation_id"], "message": message, **extra}
    return await post(client, f"{prefix}/messages", body, status=202)


async def test_documented_flow_workspace_conversation_message_poll(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo hi > hello.txt; cat hello.txt"})]),
            Reply("All done here."),
        ]
    )
    workspace = await post(api, "/api/v1/workspaces", {"workspace_id": "ws1"})
    assert workspace["success"] is True and workspace["workspace_id"] == "ws1"

    accepted = await start(api, "say hi", ws="ws1", run_mode="fast", max_iterations=100)
    assert set(accepted) == {"success", "task_id", "conversation_id", "status", "created_at"}
    assert accepted["status"] == "running"
    status, events = await follow(api, accepted["task_id"])

    assert status == "completed"
    assert [e["offset"] for e in events] == list(range(len(events)))
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "run_completed"
    assert {"iteration_started", "model_response", "tool_call", "tool_result"} <= set(types)
    text = "".join(e["data"]["content"] for e in events if e["type"] == "text_chunk")
    assert text == "All done here."
    result = next(e for e in events if e["type"] == "tool_result")["data"]
    assert result["stdout"] == "hi\n"
    files = await get(api, "/api/v1/workspaces/ws1/files")
    assert "hello.txt" in {f["path"] for f in files["files"]}


async def test_conversation_keeps_its_history(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend(
        [ToolCalls([Call("execute_python", {"code": "print(6 * 7)"})]), Reply("42"), Reply("You asked 6*7.")]
    )
    first = await start(api, "what is 6*7?")
    await follow(api, first["task_id"])

    second = await post(
        api,
        "/api/v1/messages",
        {"conversation_id": first["conversation_id"], "message": "what did I ask?"},
        status=202,
    )
    status, _ = await follow(api, second["task_id"])

    assert status == "completed"
    roles = [m["role"] for m in model_server.requests[2]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert model_server.requests[2]["messages"][3]["content"].startswith("exit code: 0")
    detail = await get(api, f"/api/v1/conversations/{first['conversation_id']}")
    conversation = detail["conversation"]
    assert conversation["title"] == "what is 6*7?"
    assert [m["role"] for m in conversation["messages"]][-2:] == ["user", "assistant"]
    assert conversation["messages"][-1]["content"] == "You asked 6*7."
    listed = await get(api, "/api/v1/conversations")
    assert [c["conversation_id"] for c in listed["conversations"]] == [first["conversation_id"]]


async def test_workspace_sandbox_persists_between_messages(
    api: Client, model_server: ScriptedModelServer, docker_client: docker.DockerClient, instance_id: str
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo kept > /tmp/state"})]),
            Reply("stored"),
            ToolCalls([Call("execute_bash", {"command": "cat /tmp/state"})]),
            Reply("read"),
        ]
    )
    first = await start(api)
    await follow(api, first["task_id"])
    assert len(instance_containers(docker_client, instance_id)) == 1  # kept for the next message
    second = await post(
        api, "/api/v1/messages", {"conversation_id": first["conversation_id"], "message": "again"}, status=202
    )
    _, events = await follow(api, second["task_id"])

    result = next(e for e in events if e["type"] == "tool_result")["data"]
    assert result["stdout"] == "kept\n"  # /tmp is the container's: same container as before


async def test_second_message_while_running_is_409_other_user_unaffected(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(3), Reply("slow"), Reply("bob's")])
    running = await start(api)

    conversation = await post(api, "/api/v1/conversations")
    response = await api.post(
        "/api/v1/messages",
        json={"conversation_id": conversation["conversation_id"], "message": "more"},
        headers=ALICE,
    )
    assert response.status == 409
    assert "already running" in (await response.json())["error"]

    bob_conversation = await post(api, "/api/v1/conversations", headers=BOB)
    bob = await post(
        api,
        "/api/v1/messages",
        {"conversation_id": bob_conversation["conversation_id"], "message": "hi"},
        BOB,
        202,
    )
    assert (await follow(api, bob["task_id"], BOB))[0] == "completed"
    assert (await follow(api, running["task_id"]))[0] == "completed"


async def test_cancel_kills_the_running_tool(
    api: Client, model_server: ScriptedModelServer, docker_client: docker.DockerClient, instance_id: str
) -> None:
    model_server.add(ToolCalls([Call("execute_bash", {"command": "sleep 120; echo never"})]))
    accepted = await start(api)
    task_id = accepted["task_id"]
    container = await wait_for_process(docker_client, instance_id, "sleep 120")

    started = time.monotonic()
    canceled = await post(api, f"/api/v1/tasks/{task_id}/cancel")
    elapsed = time.monotonic() - started

    assert canceled == {"success": True, "task_id": task_id, "status": "canceled"}
    assert elapsed < 2.0
    data = (await get(api, f"/api/v1/tasks/{task_id}?from=0"))["data"]
    assert data["status"] == "canceled"
    assert data["events"][-1]["type"] == "run_canceled"
    assert not processes_matching(docker_client, container, "sleep 120")
    again = await post(api, f"/api/v1/tasks/{task_id}/cancel")  # idempotent
    assert again["status"] == "canceled"


async def test_long_poll_returns_as_soon_as_an_event_arrives(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(1.0), Reply("late")])
    accepted = await start(api)
    first = (await get(api, f"/api/v1/tasks/{accepted['task_id']}?from=0"))["data"]
    offset = first["next_offset"]

    started = time.monotonic()
    data = (await get(api, f"/api/v1/tasks/{accepted['task_id']}?from={offset}&wait=20"))["data"]

    assert data["events"], "the long poll ended without an event"
    assert data["events"][0]["offset"] == offset
    assert time.monotonic() - started < 15


async def test_poll_offsets_and_bad_queries(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("ok"))
    accepted = await start(api)
    _, events = await follow(api, accepted["task_id"])
    end = len(events)

    past = (await get(api, f"/api/v1/tasks/{accepted['task_id']}?from={end + 5}"))["data"]
    assert past["events"] == [] and past["next_offset"] == end + 5
    paged = (await get(api, f"/api/v1/tasks/{accepted['task_id']}?from=0&limit=2"))["data"]
    assert [e["offset"] for e in paged["events"]] == [0, 1]
    assert paged["has_more"] is True and paged["status"] == "running"  # not done reading yet
    for query in ("from=-1", "from=abc", "wait=31", "wait=x"):
        body = await get(api, f"/api/v1/tasks/{accepted['task_id']}?{query}", status=400)
        assert body["success"] is False
    await get(api, "/api/v1/tasks/not-a-task", status=404)


async def test_sse_streams_every_event_and_resumes(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([ToolCalls([Call("execute_bash", {"command": "echo x"})]), Reply("streamed")])
    accepted = await start(api)
    path = f"/api/v1/tasks/{accepted['task_id']}/events"

    response = await api.get(path, headers=ALICE)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    frames = [f for f in (await response.text()).split("\n\n") if f.startswith("id:")]
    ids = [int(f.split("\n")[0].removeprefix("id: ")) for f in frames]
    assert ids == list(range(len(ids)))
    assert "event: run_completed" in frames[-1]

    resumed = await api.get(path, headers={**ALICE, "Last-Event-ID": str(ids[-3])})
    resumed_ids = [
        int(f.split("\n")[0].removeprefix("id: "))
        for f in (await resumed.text()).split("\n\n")
        if f.startswith("id:")
    ]
    assert resumed_ids == ids[-2:]


async def test_users_cannot_reach_each_others_objects(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("mine"))
    await post(api, "/api/v1/workspaces", {"workspace_id": "private"})
    accepted = await start(api, ws="private")
    await follow(api, accepted["task_id"])
    task, conversation = accepted["task_id"], accepted["conversation_id"]

    for path in (
        f"/api/v1/tasks/{task}",
        f"/api/v1/tasks/{task}/events",
        "/api/v1/workspaces/private/conversations",
        f"/api/v1/workspaces/private/conversations/{conversation}",
        f"/api/v1/conversations/{conversation}",
    ):
        await get(api, path, headers=BOB, status=404)
    await post(api, f"/api/v1/tasks/{task}/cancel", headers=BOB, status=404)
    await post(
        api,
        "/api/v1/workspaces/private/messages",
        {"conversation_id": conversation, "message": "x"},
        BOB,
        404,
    )
    response = await api.delete(f"/api/v1/workspaces/private/conversations/{conversation}", headers=BOB)
    assert response.status == 404
    assert (await get(api, "/api/v1/workspaces", headers=BOB))["workspaces"][0]["workspace_id"] == "default"
    assert [w["workspace_id"] for w in (await get(api, "/api/v1/workspaces", headers=BOB))["workspaces"]] == [
        "default"
    ]


async def test_global_cap_queues_tasks_as_pending(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, max_running_tasks=1, task_max_per_user=3)
    model_server.extend([Hang(1.0), Reply("first"), Reply("second")])
    first = await start(api)
    second = await start(api)

    assert first["status"] == "running"
    assert second["status"] == "pending"
    status, events = await follow(api, second["task_id"])
    assert status == "completed"
    assert {"type": "status_changed", "status": "running"} in [
        {"type": e["type"], **e["data"]} for e in events if e["type"] == "status_changed"
    ]


async def test_a_queued_task_is_canceled_with_one_final_event_and_its_stream_ends(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, max_running_tasks=1, task_max_per_user=3)
    model_server.extend([Hang(3600), Reply("first")])
    first = await start(api)
    second = await start(api)
    assert second["status"] == "pending"
    stream = asyncio.create_task(api.get(f"/api/v1/tasks/{second['task_id']}/events", headers=ALICE))

    canceled = await post(api, f"/api/v1/tasks/{second['task_id']}/cancel")

    assert canceled == {"success": True, "task_id": second["task_id"], "status": "canceled"}
    response = await asyncio.wait_for(stream, 30)
    frames = [
        json.loads(line[6:]) for line in (await response.text()).splitlines() if line.startswith("data: ")
    ]
    assert [f["type"] for f in frames] == ["run_started", "run_canceled"]
    assert frames[-1]["data"]["reason"] == "canceled by the user"
    again = await post(api, f"/api/v1/tasks/{second['task_id']}/cancel")  # idempotent, nothing more written
    assert again["status"] == "canceled"
    status, events = await follow(api, second["task_id"])
    assert (status, [e["type"] for e in events]) == ("canceled", ["run_started", "run_canceled"])
    await post(api, f"/api/v1/tasks/{first['task_id']}/cancel")


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"message": ""}, 400, "message"),
        ({"message": "x", "run_mode": "turbo"}, 400, "run_mode"),
        ({"message": "x", "max_iterations": 0}, 400, "max_iterations"),
        ({"message": "x", "conversation_id": "conv_nope"}, 404, "conv_nope"),
        ({"message": "x", "model_key": "nope"}, 400, "nope"),
        ({"message": "x", "prompt_name": "nope"}, 404, "nope"),
        ({"message": "x", "surprise": 1}, 400, "surprise"),
    ],
)
async def test_bad_messages_are_refused(
    api: Client, model_server: ScriptedModelServer, body: dict[str, Any], status: int, reason: str
) -> None:
    response = await api.post("/api/v1/messages", json=body, headers=ALICE)

    assert response.status == status
    assert reason in (await response.json())["error"]
    assert model_server.requests == []


async def test_delete_conversation(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("bye"))
    accepted = await start(api)
    await follow(api, accepted["task_id"])

    response = await api.delete(f"/api/v1/conversations/{accepted['conversation_id']}", headers=ALICE)
    assert response.status == 200
    await get(api, f"/api/v1/conversations/{accepted['conversation_id']}", status=404)
    # The finished task and its events stay readable.
    assert (await get(api, f"/api/v1/tasks/{accepted['task_id']}"))["data"]["status"] == "completed"


async def test_run_modes_set_reasoning_effort_and_prompt(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("quick"), Reply("thought", reasoning="hmm"), Reply("deep")])
    for mode in ("fast", "thinking", "deep"):
        accepted = await start(api, run_mode=mode)
        status, _ = await follow(api, accepted["task_id"])
        assert status == "completed"

    fast, thinking, deep = model_server.requests
    assert "reasoning_effort" not in fast
    assert thinking["reasoning_effort"] == "medium"
    assert deep["reasoning_effort"] == "high"
    assert "verify" in deep["messages"][0]["content"]
    assert "verify" not in fast["messages"][0]["content"]


async def test_server_refusing_reasoning_effort_is_asked_without_it(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [Error(400, message="Unrecognized request argument: reasoning_effort"), Reply("fine")]
    )
    accepted = await start(api, run_mode="deep")

    status, events = await follow(api, accepted["task_id"])

    assert status == "completed"
    assert events[-1]["data"]["response"] == "fine"
    assert [("reasoning_effort" in r) for r in model_server.requests] == [True, False]


async def test_idle_workspace_sandbox_is_removed_and_files_persist(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    docker_client: docker.DockerClient,
    instance_id: str,
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, workspace_idle_timeout=0.3)
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo kept > notes.txt; echo gone > /tmp/scratch"})]),
            Reply("written"),
            ToolCalls([Call("execute_bash", {"command": "cat notes.txt; cat /tmp/scratch"})]),
            Reply("read"),
        ]
    )
    first = await start(api)
    await follow(api, first["task_id"])
    for _ in range(100):
        if not instance_containers(docker_client, instance_id):
            break
        await asyncio.sleep(0.05)
    assert instance_containers(docker_client, instance_id) == []

    second = await post(
        api, "/api/v1/messages", {"conversation_id": first["conversation_id"], "message": "again"}, status=202
    )
    _, events = await follow(api, second["task_id"])

    result = next(e for e in events if e["type"] == "tool_result")["data"]
    assert result["stdout"] == "kept\n"  # the workspace's files are back
    assert "No such file" in result["stderr"]  # /tmp was the old container's


async def test_a_workspace_sandbox_that_died_is_replaced(
    api: Client, model_server: ScriptedModelServer, docker_client: docker.DockerClient, instance_id: str
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo one"})]),
            Reply("first"),
            ToolCalls([Call("execute_bash", {"command": "echo two"})]),
            Reply("second"),
        ]
    )
    first = await start(api)
    await follow(api, first["task_id"])
    (container,) = instance_containers(docker_client, instance_id)
    docker_client.api.kill(container["Id"])

    second = await post(
        api, "/api/v1/messages", {"conversation_id": first["conversation_id"], "message": "again"}, status=202
    )
    status, events = await follow(api, second["task_id"])

    assert status == "completed"
    assert next(e for e in events if e["type"] == "tool_result")["data"]["stdout"] == "two\n"


async def test_refused_message_creates_no_conversation(
    api: Client, model_server: ScriptedModelServer
) -> None:
    response = await api.post("/api/v1/messages", json={"message": "x", "model_key": "nope"}, headers=ALICE)

    assert response.status == 400
    assert (await get(api, "/api/v1/conversations"))["conversations"] == []


async def test_message_refused_as_409_creates_no_conversation(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(3), Reply("slow")])
    running = await start(api)

    refused = await api.post("/api/v1/messages", json={"message": "another"}, headers=ALICE)
    invoked = await api.post("/api/v1/capabilities/general/invoke", json={"message": "x"}, headers=ALICE)

    assert refused.status == 409, await refused.text()
    assert invoked.status == 409, await invoked.text()
    conversations = (await get(api, "/api/v1/conversations"))["conversations"]
    assert [c["conversation_id"] for c in conversations] == [running["conversation_id"]]
    await follow(api, running["task_id"])


async def test_concurrent_messages_of_one_user_admit_one(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(1), Reply("the one")])

    responses = await asyncio.gather(
        *(api.post("/api/v1/messages", json={"message": f"m{n}"}, headers=ALICE) for n in range(4))
    )

    assert sorted(r.status for r in responses) == [202, 409, 409, 409]
    (accepted,) = [await r.json() for r in responses if r.status == 202]
    conversations = (await get(api, "/api/v1/conversations"))["conversations"]
    assert [c["conversation_id"] for c in conversations] == [accepted["conversation_id"]]
    await follow(api, accepted["task_id"])


async def test_tool_output_streams_while_the_command_runs(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, output_limit=256)
    command = "echo step1; sleep 1; echo step2 >&2; head -c 5000 /dev/zero | tr '\\0' x; echo; echo end"
    model_server.extend([ToolCalls([Call("execute_bash", {"command": command})]), Reply("built")])
    accepted = await start(api)
    offset, early = 0, []
    while not any(e["type"] == "tool_output" for e in early):
        data = (await get(api, f"/api/v1/tasks/{accepted['task_id']}?from={offset}&wait=5"))["data"]
        early.extend(data["events"])
        offset = data["next_offset"]
        assert data["status"] == "running", "the task ended before any output was seen"
    assert "tool_result" not in [e["type"] for e in early]  # seen while the command still ran

    status, events = await follow(api, accepted["task_id"])

    assert status == "completed"
    types = [e["type"] for e in events]
    outputs = [e["data"] for e in events if e["type"] == "tool_output"]
    assert types.index("tool_call") < types.index("tool_output") < types.index("tool_result")
    assert {o["tool_call_id"] for o in outputs} == {"call_1"} and {o["iteration"] for o in outputs} == {1}
    stdout = "".join(o["content"] for o in outputs if o["stream"] == "stdout")
    assert stdout == "step1\n" + "x" * 122  # the head half of the 256-byte cap; the rest is only counted
    assert "".join(o["content"] for o in outputs if o["stream"] == "stderr") == "step2\n"
    result = next(e for e in events if e["type"] == "tool_result")["data"]
    assert result["stdout"].startswith("step1\nxxx") and result["stdout"].endswith("xxx\nend\n")
    assert result["stdout_bytes"] == 6 + 5000 + 1 + 4 and result["truncated_bytes"] > 0

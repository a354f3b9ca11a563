"""A2A over JSON-RPC at /a2a: the agent card, JSON-RPC 2.0 rules, the three dialects' shapes, a copied flat-dialect client."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.compat.v0_3 import types as v03
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from api.a2a import routes as a2a
from api.web.jsonrpc import Method
from api.web.keys import STORE
from runtime.features.capabilities import BUILTIN_CAPABILITIES
from runtime.store.schema import task_origins
from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker, StartWorker
from tests.api.test_tasks import follow
from tests.fakes import Hang, Reply, ScriptedModelServer
from tests.served_worker import SEED_CLIENTS, run_seed_client

pytestmark = pytest.mark.both_engines  # every route here reads or writes the store

Client = TestClient[Any, Any]
SEED_CLIENT = SEED_CLIENTS / "seed_000_a2a.py"


async def post_rpc(client: Client, body: Any, headers: dict[str, str] = ALICE, status: int = 200) -> Any:
    response = await client.post("/a2a", json=body, headers=headers)
    assert response.status == status, await response.text()
    return None if status == 204 else await response.json()


async def rpc(
    client: Client, method: str, params: dict[str, Any], headers: dict[str, str] = ALICE, req_id: Any = 1
) -> dict[str, Any]:
    """The JSON-RPC response object of one call."""
    body = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}
    answer: dict[str, Any] = await post_rpc(client, body, headers)
    assert answer["jsonrpc"] == "2.0" and answer["id"] == req_id
    return answer


async def sse(
    client: Client, method: str, params: dict[str, Any], headers: dict[str, str] = ALICE
) -> list[dict[str, Any]]:
    """Every frame of a stream, as {"id": SSE id or None, "data": the JSON-RPC response}."""
    body = {"jsonrpc": "2.0", "id": "s", "method": method, "params": params}
    response = await client.post("/a2a", json=body, headers=headers)
    assert response.headers["Content-Type"].startswith("text/event-stream"), await response.text()
    frames, event_id = [], None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            frames.append({"id": event_id, "data": json.loads(line[6:])})
        elif not line:
            event_id = None
    return frames


def text_message(text: str, **extra: Any) -> dict[str, Any]:
    return {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": text}], **extra}


# --- agent card ----------------------------------------------------------------------------------


async def test_agent_card_on_both_paths_lists_capabilities_and_interfaces(api: Client) -> None:
    await api.post("/api/v1/capabilities", json={"id": "private-one", "name": "Mine"}, headers=ALICE)

    current = await api.get("/.well-known/agent-card.json", headers=ALICE)
    legacy = await api.get("/.well-known/agent.json", headers=ALICE)
    card = await current.json()

    assert current.status == legacy.status == 200 and await legacy.json() == card
    rpc_url = str(api.make_url("/a2a"))
    assert card["url"] == rpc_url and card["preferredTransport"] == "JSONRPC"
    assert [(i["protocolVersion"], i["url"]) for i in card["supportedInterfaces"]] == [
        ("1.0", rpc_url),
        ("0.3", rpc_url),
    ]
    assert [s["id"] for s in card["skills"]] == [c.id for c in BUILTIN_CAPABILITIES]  # not "private-one"
    assert card["skills"][1]["tags"] == ["data-analysis"]
    assert card["capabilities"]["streaming"] is True
    assert set(card["securitySchemes"]) == {"bearer", "apiKey"}
    # both SDK generations read it
    parsed = parse_agent_card(json.loads(json.dumps(card)))
    assert [i.protocol_version for i in parsed.supported_interfaces] == ["1.0", "0.3"]
    assert len(parsed.skills) == len(BUILTIN_CAPABILITIES)
    legacy_card = v03.AgentCard.model_validate(card)
    assert legacy_card.url == rpc_url and legacy_card.skills[0].id == "general"


async def test_agent_card_is_public(api: Client) -> None:
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
        response = await api.get(path)
        assert response.status == 200, await response.text()
        assert (await response.json())["name"] == "agent-worker"


async def test_agent_card_uses_the_public_url(make_client: ClientMaker) -> None:
    client = await make_client(public_url="https://agents.example.com/worker")

    card = await (await client.get("/.well-known/agent-card.json")).json()

    assert card["url"] == "https://agents.example.com/worker/a2a"
    assert "securitySchemes" not in card  # anonymous worker


# --- JSON-RPC 2.0 ----------------------------------------------------------------------------------


async def test_parse_error(api: Client) -> None:
    response = await api.post("/a2a", data=b'{"jsonrpc": "2.0", "id": 1', headers=ALICE)

    answer = await response.json()
    assert response.status == 200
    assert answer["id"] is None and answer["error"]["code"] == -32700


@pytest.mark.parametrize(
    ("body", "code", "answer_id"),
    [
        ({"id": 7, "method": "GetTask", "params": {"id": "x"}}, -32600, 7),  # no "jsonrpc"
        ({"jsonrpc": "1.0", "id": 7, "method": "GetTask"}, -32600, 7),
        ({"jsonrpc": "2.0", "id": 7}, -32600, 7),  # no method
        ({"jsonrpc": "2.0", "id": True, "method": "GetTask"}, -32600, None),  # a bool is no id
        ("GetTask", -32600, None),
        ({"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": ["x"]}, -32602, 7),
        ({"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {}}, -32602, 7),
        ({"jsonrpc": "2.0", "id": "q", "method": "tasks/nope", "params": {}}, -32601, "q"),
        ({"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "nope"}}, -32001, 7),
        ({"jsonrpc": "2.0", "id": 7, "method": "ListTasks", "params": {"pageToken": "abc"}}, -32602, 7),
        ({"jsonrpc": "2.0", "id": 7, "method": "ListTasks", "params": {"pageSize": 101}}, -32602, 7),
    ],
)
async def test_error_codes(api: Client, body: Any, code: int, answer_id: Any) -> None:
    answer = await post_rpc(api, body)

    assert answer["jsonrpc"] == "2.0" and answer["id"] == answer_id
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert "result" not in answer


async def test_a_bug_is_an_internal_error_without_details(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: Any, call: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setitem(a2a.METHODS, "ListTasks", Method(broken))

    answer = await rpc(api, "ListTasks", {})

    assert answer["error"]["code"] == -32603
    assert "secret" not in answer["error"]["message"] and "worker log" in answer["error"]["message"]


async def test_another_users_task_is_not_found(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("bob's answer")])
    sent = await rpc(api, "SendMessage", {"message": text_message("hi")}, headers=BOB)
    task_id = sent["result"]["task"]["id"]

    for method in ("GetTask", "CancelTask", "tasks/get"):
        answer = await rpc(api, method, {"id": task_id})
        assert answer["error"]["code"] == -32001, method
    assert (await rpc(api, "GetTask", {"id": task_id}, headers=BOB))["result"]["id"] == task_id


async def test_batch_answers_in_order_without_notifications(
    api: Client, model_server: ScriptedModelServer
) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "GetTask", "params": {"id": "missing"}},
        {"jsonrpc": "2.0", "method": "GetTask", "params": {"id": "missing"}},  # a notification
        {"jsonrpc": "2.0", "id": "b", "method": "no/such"},
        {
            "jsonrpc": "2.0",
            "id": "c",
            "method": "SendStreamingMessage",
            "params": {"message": text_message("x")},
        },
        42,
        {"jsonrpc": "2.0", "id": "d", "method": "ListTasks", "params": {}},
    ]

    answers = await post_rpc(api, batch)

    assert [a["id"] for a in answers] == ["a", "b", "c", None, "d"]
    assert [a.get("error", {}).get("code") for a in answers] == [-32001, -32601, -32600, -32600, None]
    assert answers[4]["result"]["tasks"] == [] and model_server.requests == []  # the stream never ran


async def test_empty_batch_and_all_notification_batch(api: Client) -> None:
    empty = await post_rpc(api, [])
    silent = await api.post(
        "/a2a", json=[{"jsonrpc": "2.0", "method": "GetTask", "params": {"id": "x"}}] * 2, headers=ALICE
    )

    assert empty["error"]["code"] == -32600 and empty["id"] is None
    assert silent.status == 204 and await silent.read() == b""


async def test_a_notification_runs_and_gets_no_answer(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("done quietly")])
    notification = {
        "jsonrpc": "2.0",
        "method": "SendMessage",
        "params": {"message": text_message("quiet"), "configuration": {"returnImmediately": True}},
    }

    response = await api.post("/a2a", json=notification, headers=ALICE)
    listed = (await rpc(api, "ListTasks", {}))["result"]

    assert response.status == 204 and await response.read() == b""
    assert listed["totalSize"] == 1
    status, _ = await follow(api, listed["tasks"][0]["id"])
    assert status == "completed"


async def test_http_errors_are_json_rpc_errors(make_client: ClientMaker) -> None:
    client = await make_client(api_keys=TWO_USER_KEYS, max_request_bytes=2048, rate_limit_per_minute=3)
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}

    unauthenticated = await client.post("/a2a", json=body)
    too_large = await client.post("/a2a", json={**body, "params": {"pad": "x" * 4096}}, headers=ALICE)
    for _ in range(3):
        await client.post("/a2a", json=body, headers=BOB)
    limited = await client.post("/a2a", json=body, headers=BOB)

    for response, status, code in (
        (unauthenticated, 401, -32000),
        (too_large, 413, -32600),
        (limited, 429, -32000),
    ):
        answer = await response.json()
        assert response.status == status
        assert answer["jsonrpc"] == "2.0" and answer["id"] is None
        assert answer["error"]["code"] == code and answer["error"]["data"] == {"httpStatus": status}
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"
    assert int(limited.headers["Retry-After"]) >= 1


async def test_unsupported_a2a_version_is_refused(api: Client) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}

    refused = await post_rpc(api, body, {**ALICE, "A2A-Version": "2.0"})
    accepted = await post_rpc(api, body, {**ALICE, "A2A-Version": "1.0"})

    assert refused["error"]["code"] == -32009
    assert accepted["result"]["totalSize"] == 0


async def test_unsupported_parts_and_task_continuation(api: Client) -> None:
    file_part = {"messageId": "m", "role": "ROLE_USER", "parts": [{"url": "https://x/y.pdf"}]}
    to_a_task = text_message("more", taskId="some-task")

    assert (await rpc(api, "SendMessage", {"message": file_part}))["error"]["code"] == -32005
    assert (await rpc(api, "SendMessage", {"message": to_a_task}))["error"]["code"] == -32004
    assert (await rpc(api, "SendMessage", {}))["error"]["code"] == -32602
    assert (await rpc(api, "message/send", {"message": text_message("")}))["error"]["code"] == -32602


# --- shapes of each dialect ------------------------------------------------------------------------


async def test_a2a_tasks_are_task_api_tasks(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("forty-two")])

    task = (await rpc(api, "SendMessage", {"message": text_message("6*7?")}))["result"]["task"]
    polled = await (await api.get(f"/api/v1/tasks/{task['id']}", headers=ALICE)).json()

    assert task["status"]["state"] == "TASK_STATE_COMPLETED"  # SendMessage waits by default
    assert task["artifacts"] == [{"artifactId": "answer", "name": "answer", "parts": [{"text": "forty-two"}]}]
    assert [m["role"] for m in task["history"]] == ["ROLE_USER", "ROLE_AGENT"]
    assert polled["data"]["status"] == "completed"
    assert polled["data"]["conversation_id"] == task["contextId"]


async def test_v03_shapes_validate_against_the_spec_types(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("zero point three", chunk_delay=0.01)])
    message = {"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}

    frames = await sse(api, "message/stream", {"message": message})
    task_id = frames[0]["data"]["result"]["id"]
    got = (await rpc(api, "tasks/get", {"id": task_id, "historyLength": 1}))["result"]

    events = [f["data"]["result"] for f in frames]
    assert events[0]["kind"] == "task" and events[0]["status"]["state"] == "working"
    assert [e["kind"] for e in events[1:-2]] == ["artifact-update"] * (len(events) - 3)
    assert events[-1]["kind"] == "status-update" and events[-1]["final"] is True
    assert events[-1]["status"]["state"] == "completed"
    for event in events:
        {
            "task": v03.Task,
            "artifact-update": v03.TaskArtifactUpdateEvent,
            "status-update": v03.TaskStatusUpdateEvent,
        }[event["kind"]].model_validate(event)
    task = v03.Task.model_validate(got)
    assert task.status.state == v03.TaskState.completed
    assert [m.role for m in task.history or []] == [v03.Role.agent]  # historyLength=1: the last one
    assert task.artifacts is not None and task.artifacts[0].parts[0].root.text == "zero point three"


async def test_stream_frames_carry_event_ids_and_resume_after_last_event_id(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("resumable answer", chunk_delay=0.01)])
    frames = await sse(api, "SendStreamingMessage", {"message": text_message("go")})
    task_id = frames[0]["data"]["result"]["task"]["id"]
    ids = [f["id"] for f in frames if f["id"] is not None]
    middle = ids[len(ids) // 2]

    resumed = await api.post(
        "/a2a",
        json={"jsonrpc": "2.0", "id": "s", "method": "SubscribeToTask", "params": {"id": task_id}},
        headers={**ALICE, "Last-Event-ID": middle},
    )
    text = await resumed.text()
    replayed = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]

    after = frames[frames.index(next(f for f in frames if f["id"] == middle)) + 1 :]
    assert replayed == [f["data"] for f in after] and replayed  # exactly what followed, nothing else
    assert ids == sorted(ids, key=int) and len(set(ids)) == len(ids)


async def test_resubscribe_to_an_ended_task_sends_its_final_state(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("over")])
    task = (await rpc(api, "SendMessage", {"message": text_message("x")}))["result"]["task"]

    frames = await sse(api, "SubscribeToTask", {"id": task["id"]})
    legacy = await sse(api, "tasks/resubscribe", {"id": task["id"]})

    assert [f["data"]["result"] for f in frames] == [{"task": task}]
    assert legacy[0]["data"]["result"]["status"]["state"] == "completed" and len(legacy) == 1


async def test_list_tasks_filters_and_pages(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("one"), Reply("two"), Hang(30)])
    first = (await rpc(api, "SendMessage", {"message": text_message("1", contextId="ctx-a")}))["result"][
        "task"
    ]
    second = (await rpc(api, "SendMessage", {"message": text_message("2")}))["result"]["task"]
    params = {"message": text_message("3"), "configuration": {"returnImmediately": True}}
    third = (await rpc(api, "SendMessage", params))["result"]["task"]

    page1 = (await rpc(api, "ListTasks", {"pageSize": 2}))["result"]
    page2 = (await rpc(api, "ListTasks", {"pageSize": 2, "pageToken": page1["nextPageToken"]}))["result"]
    in_context = (await rpc(api, "ListTasks", {"contextId": "ctx-a", "includeArtifacts": True}))["result"]
    working = (await rpc(api, "ListTasks", {"status": "TASK_STATE_WORKING"}))["result"]
    unknown_context = (await rpc(api, "ListTasks", {"contextId": "never-used"}))["result"]
    await rpc(api, "CancelTask", {"id": third["id"]})

    assert [t["id"] for t in page1["tasks"] + page2["tasks"]] == [third["id"], second["id"], first["id"]]
    assert (page1["totalSize"], page1["nextPageToken"], page2["nextPageToken"]) == (3, "2", "")
    assert "artifacts" not in page1["tasks"][1]
    assert [t["id"] for t in in_context["tasks"]] == [first["id"]]
    assert in_context["tasks"][0]["artifacts"][0]["parts"] == [{"text": "one"}]
    assert [t["id"] for t in working["tasks"]] == [third["id"]]
    assert unknown_context["tasks"] == [] and unknown_context["totalSize"] == 0


async def test_context_id_continues_the_users_own_conversation(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("noted: blue"), Reply("you said blue"), Reply("no idea")])

    first = await rpc(
        api, "SendMessage", {"message": text_message("my colour is blue", contextId="thread-1")}
    )
    second = await rpc(api, "SendMessage", {"message": text_message("what colour?", contextId="thread-1")})
    bobs = await rpc(api, "SendMessage", {"message": text_message("what colour?", contextId="thread-1")}, BOB)

    tasks = [a["result"]["task"] for a in (first, second, bobs)]
    assert [t["contextId"] for t in tasks] == ["thread-1"] * 3
    second_sees = [m["content"] for m in model_server.requests[1]["messages"][1:]]
    assert second_sees == ["my colour is blue", "noted: blue", "what colour?"]
    assert [m["content"] for m in model_server.requests[2]["messages"][1:]] == ["what colour?"]
    conversations = await (await api.get("/api/v1/conversations", headers=ALICE)).json()
    assert len(conversations["conversations"]) == 1  # one context, one conversation
    # a contextId the server issued continues too
    model_server.extend([Reply("still blue")])
    own = conversations["conversations"][0]["conversation_id"]
    third = await rpc(api, "SendMessage", {"message": text_message("again?", contextId=own)})
    assert third["result"]["task"]["contextId"] == "thread-1"  # the alias the client chose
    assert len(model_server.requests[3]["messages"]) == 6


async def test_a_refused_message_under_a_new_context_id_creates_nothing(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(3), Reply("slow")])
    running = await api.post("/api/v1/messages", json={"message": "busy"}, headers=ALICE)
    assert running.status == 202

    busy = await rpc(api, "SendMessage", {"message": text_message("hi", contextId="new-thread")})
    unknown = await rpc(
        api,
        "SendMessage",
        {"message": text_message("hi", contextId="other-thread"), "metadata": {"capability_id": "nope"}},
    )

    assert busy["error"]["data"]["httpStatus"] == 409
    assert "error" in unknown
    conversations = (await (await api.get("/api/v1/conversations", headers=ALICE)).json())["conversations"]
    assert [c["conversation_id"] for c in conversations] == [(await running.json())["conversation_id"]]
    listed = await rpc(api, "ListTasks", {"contextId": "new-thread"})
    assert listed["result"]["tasks"] == []
    await follow(api, (await running.json())["task_id"])


async def test_capability_in_metadata_selects_the_profile(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("analysed")])
    params = {"message": text_message("analyse"), "metadata": {"capability_id": "python-analyst"}}

    task = (await rpc(api, "SendMessage", params))["result"]["task"]
    missing = await rpc(api, "SendMessage", {**params, "metadata": {"capability_id": "nope"}})

    assert task["metadata"] == {"capability_id": "python-analyst"}
    assert [t["function"]["name"] for t in model_server.requests[0]["tools"]] == ["execute_python"]
    assert missing["error"]["code"] == -32602 and "nope" in missing["error"]["message"]


async def test_cancel_a_running_task_and_not_an_ended_one(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(30)])
    params = {"message": text_message("slow"), "configuration": {"returnImmediately": True}}
    task = (await rpc(api, "SendMessage", params))["result"]["task"]

    canceled = (await rpc(api, "CancelTask", {"id": task["id"]}))["result"]
    again = await rpc(api, "CancelTask", {"id": task["id"]})

    assert task["status"]["state"] == "TASK_STATE_WORKING"
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
    assert canceled["status"]["message"]["parts"] == [{"text": "canceled by the user"}]
    assert again["error"]["code"] == -32002


async def test_flat_send_subscribe_creates_and_streams_string_statuses(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("flat answer")])
    params = {
        "capability_id": "general",
        "message": {"role": "user", "parts": [{"type": "text", "text": "hi"}]},
    }

    frames = await sse(api, "tasks/sendSubscribe", params)

    results = [f["data"]["result"] for f in frames]
    assert [r["status"] for r in results][-1] == "completed"
    assert set(results[0]) == {
        "id",
        "status",
        "context_id",
        "capability_id",
        "response",
        "error",
        "updated_at",
    }
    assert results[-1]["response"] == "flat answer" and results[-1]["capability_id"] == "general"
    assert all(f["data"]["id"] == "s" for f in frames)
    task_id = results[0]["id"]
    # a flat task answers tasks/get in the flat shape, unless an A2A client says which version it speaks
    assert (await rpc(api, "tasks/get", {"id": task_id}))["result"]["status"] == "completed"
    spec = await post_rpc(
        api,
        {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": task_id}},
        {**ALICE, "A2A-Version": "0.3"},
    )
    assert spec["result"]["status"]["state"] == "completed"
    # Before the flat dialect had its name, its tasks' origin was stored as "a2a-seed": still flat.
    async with api.app[STORE]._db.connect() as conn:  # as an older release wrote it: no API writes it
        await conn.execute(
            update(task_origins).where(task_origins.c.task_id == task_id).values(surface="a2a-seed")
        )
    assert (await rpc(api, "tasks/get", {"id": task_id}))["result"]["status"] == "completed"


# --- a flat-dialect client copied from its documents, against a served worker ---------------------


async def test_copied_flat_client_sends_gets_cancels_and_subscribes(
    start_worker: StartWorker, model: ScriptedModelServer
) -> None:
    base, _ = await start_worker(AGENT_API_KEYS="seed-user:tok-seed")
    headers = {"Authorization": "Bearer tok-seed"}
    capability = {"id": "cap_ocr_invoice_v1", "name": "Invoice OCR", "default_input": "Read the invoice."}
    # The seed cancels its first task at once, maybe before the task's model call is even sent, so
    # either turn may serve the second task: both are the same slow answer.
    answer = Reply("Invoice total: 42.00 EUR", chunk_delay=0.1)
    model.extend([answer, answer])
    created = await asyncio.to_thread(_post, f"{base}/api/v1/capabilities", capability, headers)
    assert created["code"] == 0

    env = {
        "BASE_URL": base,
        "API_KEY": "tok-seed",
        "USER_ID": "seed-user",
        "CAPABILITY_ID": capability["id"],
    }
    out = await run_seed_client([sys.executable, str(SEED_CLIENT)], env, timeout=120)
    lines = out.splitlines()
    assert lines[0].startswith("Created: ") and lines[0].endswith(", status: working")
    assert lines[1:3] == ["Status: working", "After cancel: canceled"]
    assert lines[3:-2] and set(lines[3:-2]) == {"Status update: working"}
    assert lines[-2:] == ["Status update: completed", "Final: completed Invoice total: 42.00 EUR"]
    assert model.requests[-1]["messages"][-1]["content"] == "Read the invoice."


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return httpx.post(url, json=body, headers=headers, timeout=10).json()

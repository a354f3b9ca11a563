"""The capability catalogue and invokes, over HTTP, in the capability envelope {code, message, data, timestamp}."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from runtime.features.capabilities import BUILTIN_CAPABILITIES
from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker
from tests.api.test_tasks import follow
from tests.fakes import Call, Hang, Reply, ScriptedModelServer, ToolCalls

pytestmark = pytest.mark.both_engines  # every route here reads or writes the store

Client = TestClient[Any, Any]
BUILTIN_IDS = [spec.id for spec in BUILTIN_CAPABILITIES]


async def call(
    client: Client,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] = ALICE,
    status: int = 200,
) -> dict[str, Any]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == status, await response.text()
    envelope = await response.json()
    assert set(envelope) == {"code", "message", "data", "timestamp"}
    assert abs(envelope["timestamp"] - time.time()) < 5 and isinstance(envelope["timestamp"], int)
    if status < 400:
        assert (envelope["code"], envelope["message"]) == (0, "success")
    else:
        assert envelope["code"] == status and envelope["data"] is None
    return envelope


def spec(capability_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": capability_id, "name": f"The {capability_id}", **extra}


async def test_list_is_paged_in_the_capability_envelope(api: Client) -> None:
    for name in ("mine-a", "mine-b", "mine-c"):
        await call(api, "POST", "/api/v1/capabilities", spec(name), status=201)

    first = (await call(api, "GET", "/api/v1/capabilities?page=1&page_size=4"))["data"]
    second = (await call(api, "GET", "/api/v1/capabilities?page=2&page_size=4"))["data"]
    beyond = (await call(api, "GET", "/api/v1/capabilities?page=3&page_size=4"))["data"]

    assert set(first) == {"items", "total", "page", "page_size", "has_more"}
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == [*BUILTIN_IDS, "mine-a", "mine-b", "mine-c"]
    assert (first["total"], first["page"], first["page_size"], first["has_more"]) == (6, 1, 4, True)
    assert (len(second["items"]), second["page"], second["has_more"]) == (2, 2, False)
    assert (beyond["items"], beyond["total"], beyond["has_more"]) == ([], 6, False)
    assert first["items"][0]["source"] == "builtin" and second["items"][-1]["source"] == "user"


async def test_list_capabilities_defaults_and_category_filter(api: Client) -> None:
    await call(api, "POST", "/api/v1/capabilities", spec("mine", category="data-analysis"), status=201)

    everything = (await call(api, "GET", "/api/v1/capabilities?page=1&page_size=20"))["data"]
    analysis = (await call(api, "GET", "/api/v1/capabilities?category=data-analysis"))["data"]
    none = (await call(api, "GET", "/api/v1/capabilities?category=nothing-here"))["data"]

    assert everything["total"] == len(BUILTIN_IDS) + 1 and everything["has_more"] is False
    assert [item["id"] for item in analysis["items"]] == ["python-analyst", "mine"]
    assert analysis["total"] == 2
    assert (none["items"], none["total"]) == ([], 0)


@pytest.mark.parametrize("query", ["page_size=101", "page_size=0", "page=0", "page=x"])
async def test_bad_paging_is_a_400_in_the_envelope(api: Client, query: str) -> None:
    envelope = await call(api, "GET", f"/api/v1/capabilities?{query}", status=400)

    assert query.split("=")[0] in envelope["message"]


async def test_errors_on_capability_paths_use_the_envelope(api: Client) -> None:
    missing = await call(api, "GET", "/api/v1/capabilities/no-such-thing", status=404)
    anonymous = await call(api, "GET", "/api/v1/capabilities", headers={}, status=401)
    not_json = await api.post("/api/v1/capabilities", data=b"{", headers=ALICE)

    assert "no-such-thing" in missing["message"]
    assert "credentials" in anonymous["message"]
    assert not_json.status == 400 and (await not_json.json())["code"] == 400
    elsewhere = await api.get("/api/v1/tasks/nope", headers=ALICE)  # other surfaces keep their envelope
    assert await elsewhere.json() == {"success": False, "error": "run nope not found"}


async def test_create_get_and_delete_an_own_capability(api: Client) -> None:
    body = spec(
        "sql-helper",
        description="Writes SQL",
        category="data",
        system_prompt="You write SQLite queries.",
        allowed_tools=["execute_bash"],
        limits={"max_iterations": 7, "run_mode": "thinking"},
    )
    created = (await call(api, "POST", "/api/v1/capabilities", body, status=201))["data"]
    fetched = (await call(api, "GET", "/api/v1/capabilities/sql-helper"))["data"]

    assert fetched == created
    assert created["source"] == "user" and created["created_at"] > time.time() - 5
    assert created["allowed_tools"] == ["execute_bash"]
    assert created["limits"] == {"max_iterations": 7, "run_mode": "thinking"}
    # private: another user neither lists nor gets it
    bobs = (await call(api, "GET", "/api/v1/capabilities", headers=BOB))["data"]
    assert "sql-helper" not in [item["id"] for item in bobs["items"]]
    await call(api, "GET", "/api/v1/capabilities/sql-helper", headers=BOB, status=404)

    deleted = await call(api, "DELETE", "/api/v1/capabilities/sql-helper")
    assert deleted["data"] == {"capability_id": "sql-helper"}
    await call(api, "GET", "/api/v1/capabilities/sql-helper", status=404)


async def test_create_refuses_taken_ids_and_bad_specs(api: Client) -> None:
    await call(api, "POST", "/api/v1/capabilities", spec("mine"), status=201)

    again = await call(api, "POST", "/api/v1/capabilities", spec("mine"), status=409)
    global_id = await call(api, "POST", "/api/v1/capabilities", spec("general"), status=409)
    bad_tool = await call(api, "POST", "/api/v1/capabilities", spec("x", allowed_tools=["rm_rf"]), status=400)
    bad_model = await call(api, "POST", "/api/v1/capabilities", spec("y", model_key="gpt-9"), status=400)
    bad_id = await call(api, "POST", "/api/v1/capabilities", spec("../etc"), status=400)
    read_only = await call(api, "DELETE", "/api/v1/capabilities/general", status=409)

    assert "already" in again["message"] and "global" in global_id["message"]
    assert "allowed_tools" in bad_tool["message"] and "gpt-9" in bad_model["message"]
    assert "id" in bad_id["message"] and "read-only" in read_only["message"]
    # the same id is free for another user
    await call(api, "POST", "/api/v1/capabilities", spec("mine"), headers=BOB, status=201)


async def test_invoke_runs_the_capability_profile(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([ToolCalls([Call("execute_python", {"code": "print(2 ** 10)"})]), Reply("1024")])

    invoked = await call(
        api, "POST", "/api/v1/capabilities/python-analyst/invoke", {"message": "2^10?"}, status=202
    )
    data = invoked["data"]
    status, events = await follow(api, data["task_id"])

    assert set(data) == {
        "task_id",
        "status",
        "conversation_id",
        "capability_id",
        "created_at",
        "transaction_id",
    }
    assert data["transaction_id"] is None  # a global capability is free: no order
    assert data["status"] == "running" and data["capability_id"] == "python-analyst"
    assert data["conversation_id"].startswith("conv_")
    assert status == "completed"
    assert events[0]["data"]["max_iterations"] == 30  # the capability's limit
    first_request = model_server.requests[0]
    assert first_request["messages"][0]["content"].startswith("You are a careful data analyst.")
    assert [tool["function"]["name"] for tool in first_request["tools"]] == ["execute_python"]
    assert next(e for e in events if e["type"] == "tool_result")["data"]["stdout"] == "1024\n"


async def test_a_python_only_capability_cannot_run_bash(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([ToolCalls([Call("execute_bash", {"command": "touch /tmp/x"})]), Reply("could not")])

    data = (
        await call(api, "POST", "/api/v1/capabilities/python-analyst/invoke", {"message": "go"}, status=202)
    )["data"]
    status, events = await follow(api, data["task_id"])

    assert status == "completed"
    result = next(e for e in events if e["type"] == "tool_result")["data"]
    assert result["success"] is False and result["returncode"] is None
    assert result["error"] == "Unknown tool 'execute_bash'. Available tools: execute_python."
    assert model_server.requests[1]["messages"][-1]["content"].startswith(
        "Error: Unknown tool 'execute_bash'"
    )


async def test_invoke_without_a_message_uses_the_default_input(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("Debian, Python 3")])
    report = next(s for s in BUILTIN_CAPABILITIES if s.id == "sandbox-report")

    data = (await call(api, "POST", "/api/v1/capabilities/sandbox-report/invoke", status=202))["data"]
    _, events = await follow(api, data["task_id"])
    no_default = await call(api, "POST", "/api/v1/capabilities/general/invoke", {}, status=400)
    unknown = await call(api, "POST", "/api/v1/capabilities/nope/invoke", {"message": "x"}, status=404)

    assert events[0]["data"]["message"] == report.default_input
    assert model_server.requests[0]["messages"][-1] == {"role": "user", "content": report.default_input}
    assert "default input" in no_default["message"] and "nope" in unknown["message"]


async def test_invoke_continues_a_conversation(api: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([Reply("first"), Reply("second")])
    first = (await call(api, "POST", "/api/v1/capabilities/general/invoke", {"message": "one"}, status=202))[
        "data"
    ]
    await follow(api, first["task_id"])

    second = (
        await call(
            api,
            "POST",
            "/api/v1/capabilities/general/invoke",
            {"message": "two", "conversation_id": first["conversation_id"]},
            status=202,
        )
    )["data"]
    await follow(api, second["task_id"])

    assert second["conversation_id"] == first["conversation_id"]
    contents = [m["content"] for m in model_server.requests[1]["messages"][1:]]
    assert contents == ["one", "first", "two"]


async def test_body_idempotency_key_runs_the_invoke_once(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("only once")])
    body = {"message": "count to one", "idempotency_key": "invoke-1"}

    first = await api.post("/api/v1/capabilities/general/invoke", json=body, headers=ALICE)
    retry = await api.post("/api/v1/capabilities/general/invoke", json=body, headers=ALICE)
    first_body, retry_body = await first.json(), await retry.json()
    status, _ = await follow(api, first_body["data"]["task_id"])
    after = await api.post("/api/v1/capabilities/general/invoke", json=body, headers=ALICE)
    other_body = await call(
        api,
        "POST",
        "/api/v1/capabilities/general/invoke",
        {"message": "something else", "idempotency_key": "invoke-1"},
        status=422,
    )

    assert first.status == retry.status == after.status == 202
    assert retry_body == first_body and (await after.json()) == first_body
    assert retry.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert status == "completed"
    assert len(model_server.requests) == 1  # one run, whatever the retries
    assert "different request" in other_body["message"]
    # the same key is the same user's only: another user's invoke with it runs
    model_server.extend([Reply("bob's")])
    bobs = await call(api, "POST", "/api/v1/capabilities/general/invoke", body, headers=BOB, status=202)
    assert bobs["data"]["task_id"] != first_body["data"]["task_id"]
    await follow(api, bobs["data"]["task_id"], BOB)


async def test_a_refused_invoke_frees_its_idempotency_key(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(30)])
    busy = (await call(api, "POST", "/api/v1/capabilities/general/invoke", {"message": "a"}, status=202))[
        "data"
    ]
    body = {"message": "b", "idempotency_key": "k-2"}

    refused = await call(api, "POST", "/api/v1/capabilities/general/invoke", body, status=409)
    for _ in range(500):  # until the hang has begun: then it will not serve the next task
        if model_server.requests:
            break
        await asyncio.sleep(0.01)
    await api.post(f"/api/v1/tasks/{busy['task_id']}/cancel", headers=ALICE)
    model_server.extend([Reply("now")])
    accepted = await call(api, "POST", "/api/v1/capabilities/general/invoke", body, status=202)

    assert "already running" in refused["message"]
    assert (await follow(api, accepted["data"]["task_id"]))[0] == "completed"


async def test_capabilities_file_replaces_the_builtin_ones(
    make_client: ClientMaker, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    path = tmp_path / "capabilities.json"
    path.write_text(
        json.dumps(
            [
                {"id": "ocr", "name": "OCR", "category": "vision", "default_input": "Read it."},
                {"id": "bash-only", "name": "Bash", "allowed_tools": ["execute_bash"]},
            ]
        )
    )
    api = await make_client(api_keys=TWO_USER_KEYS, capabilities_file=path)
    model_server.extend([Reply("read")])

    listed = (await call(api, "GET", "/api/v1/capabilities"))["data"]
    invoked = (await call(api, "POST", "/api/v1/capabilities/ocr/invoke", status=202))["data"]
    await follow(api, invoked["task_id"])

    assert [(i["id"], i["source"]) for i in listed["items"]] == [("ocr", "file"), ("bash-only", "file")]
    assert model_server.requests[0]["messages"][-1]["content"] == "Read it."
    await call(api, "GET", "/api/v1/capabilities/general", status=404)


async def test_openapi_documents_the_capability_routes_and_their_envelope(api: Client) -> None:
    document = await (await api.get("/openapi.json")).json()

    invoke = document["paths"]["/api/v1/capabilities/{capability_id}/invoke"]["post"]
    listing = document["paths"]["/api/v1/capabilities"]["get"]
    assert invoke["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/EnvelopeError"
    )
    assert {p["name"] for p in listing["parameters"]} == {"category", "page", "page_size"}
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    assert page_size["schema"]["maximum"] == 100
    assert "202" in invoke["responses"] and "422" in invoke["responses"]

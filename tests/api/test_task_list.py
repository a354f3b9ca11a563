"""``GET /api/v1/tasks``: the caller's tasks, newest first, filtered and paged, with their figures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE, BOB, TWO_USER_KEYS, ClientMaker
from tests.fakes import Call, Error, Hang, Reply, ScriptedModelServer, ToolCalls, Usage

Client = TestClient[Any, Any]
pytestmark = [pytest.mark.both_engines, pytest.mark.docker]

CAROL = {"Authorization": "Bearer tok-c"}


@pytest.fixture
async def api(make_platform: ClientMaker) -> Client:
    return await make_platform(api_keys=f"{TWO_USER_KEYS},carol:tok-c", task_max_per_user=5)


async def answer(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def finished(api: Client, task_id: str, headers: dict[str, str] = ALICE) -> str:
    offset = 0
    for _ in range(600):
        data = (
            await answer(await api.get(f"/api/v1/tasks/{task_id}?from={offset}&wait=2", headers=headers))
        )["data"]
        offset = data["next_offset"]
        if data["status"] not in ("pending", "running"):
            return str(data["status"])
    raise AssertionError("task never finished")


async def send(api: Client, message: str, conversation_id: str | None = None) -> str:
    body = {"message": message, **({"conversation_id": conversation_id} if conversation_id else {})}
    accepted = await answer(await api.post("/api/v1/messages", json=body, headers=ALICE), 202)
    return str(accepted["task_id"])


async def settled_order(api: Client, order_id: str) -> None:
    for _ in range(600):  # the order is settled just after its task ends
        found = await answer(await api.get(f"/api/v1/transactions/{order_id}", headers=ALICE))
        if found["data"]["status"] not in ("pending", "running"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("order never settled")


async def test_lists_the_callers_tasks_newest_first_with_their_figures(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("first", usage=Usage(prompt_tokens=100, completion_tokens=7)))
    first = await send(api, "one")
    assert await finished(api, first) == "completed"
    model_server.add(Error(status=400, message="bad request"))
    failed = await send(api, "two")
    assert await finished(api, failed) == "failed"
    model_server.add(Reply("general's"))
    invoked = await answer(
        await api.post("/api/v1/capabilities/general/invoke", json={"message": "x"}, headers=ALICE), 202
    )
    assert await finished(api, invoked["data"]["task_id"]) == "completed"
    spec = {
        "id": "carol-cap",
        "name": "Carol's",
        "default_input": "go",
        "visibility": "public",
        "price": 12.5,
    }
    await answer(await api.post("/api/v1/capabilities", json=spec, headers=CAROL), 201)
    model_server.add(Reply("carol's"))
    order = await answer(
        await api.post("/api/v1/transactions", json={"capability_id": "carol-cap"}, headers=ALICE), 201
    )
    await settled_order(api, order["data"]["id"])
    model_server.add(Reply("chat"))
    await answer(await api.post("/chat", json={"message": "not a task"}, headers=ALICE))

    listed = await answer(await api.get("/api/v1/tasks", headers=ALICE))

    assert listed["success"] is True
    assert (listed["total"], listed["page"], listed["page_size"], listed["has_more"]) == (4, 1, 20, False)
    tasks = listed["tasks"]
    assert [t["task_id"] for t in tasks] == [order["data"]["id"], invoked["data"]["task_id"], failed, first]
    paid, general, bad, done = tasks
    assert (paid["capability_id"], paid["amount"], paid["status"]) == ("carol-cap", 12.5, "completed")
    assert (general["capability_id"], general["amount"]) == ("general", None)
    assert (done["capability_id"], done["amount"], done["error"]) == (None, None, None)
    assert done["usage"] == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    assert bad["status"] == "failed" and bad["error"] and bad["usage"]["total_tokens"] == 0
    for task in tasks:
        assert task["workspace_id"] == "default" and task["conversation_id"]
        assert task["created_at"] <= task["started_at"] <= task["finished_at"]
        assert task["duration"] == pytest.approx(task["finished_at"] - task["started_at"])
    assert (await answer(await api.get("/api/v1/tasks", headers=BOB)))["tasks"] == []


async def test_filters_and_pages(api: Client, model_server: ScriptedModelServer) -> None:
    conversation = (await answer(await api.post("/api/v1/conversations", headers=ALICE)))["conversation_id"]
    ids = []
    for n in range(3):
        model_server.add(Reply(f"answer {n}"))
        ids.append(await send(api, f"message {n}", conversation if n < 2 else None))
        assert await finished(api, ids[-1]) == "completed"
    model_server.add(Error(status=400, message="bad request"))
    failed = await send(api, "fails")
    assert await finished(api, failed) == "failed"

    async def listed(query: str, headers: dict[str, str] = ALICE) -> Any:
        return await answer(await api.get(f"/api/v1/tasks?{query}", headers=headers))

    in_conversation = await listed(f"conversation_id={conversation}")
    assert [t["task_id"] for t in in_conversation["tasks"]] == [ids[1], ids[0]]
    assert [t["task_id"] for t in (await listed("status=failed"))["tasks"]] == [failed]
    assert [t["task_id"] for t in (await listed("status=completed&page_size=2"))["tasks"]] == [ids[2], ids[1]]
    second = await listed("status=completed&page=2&page_size=2")
    assert ([t["task_id"] for t in second["tasks"]], second["total"], second["has_more"]) == (
        [ids[0]],
        3,
        False,
    )
    first = await listed("page=1&page_size=2")
    assert (first["total"], first["has_more"]) == (4, True)
    assert (await listed("status=&conversation_id="))["total"] == 4
    assert (await listed("page=9"))["tasks"] == []
    assert (await listed(f"conversation_id={conversation}", headers=BOB))["tasks"] == []


@pytest.mark.parametrize(
    "query", ["status=done", "page_size=101", "page_size=0", "page=0", "page=x", "page=9007199254740992"]
)
async def test_bad_queries_are_400(api: Client, query: str) -> None:
    body = await answer(await api.get(f"/api/v1/tasks?{query}", headers=ALICE), 400)
    assert body["success"] is False and body["error"]


async def test_a_pending_task_has_no_start_yet(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, max_running_tasks=1)
    model_server.add(Hang(120))  # alice's task holds the only slot until it is canceled
    model_server.add(Reply("queued"))
    running = (await answer(await api.post("/api/v1/messages", json={"message": "a"}, headers=ALICE), 202))[
        "task_id"
    ]
    queued = await answer(await api.post("/api/v1/messages", json={"message": "b"}, headers=BOB), 202)
    assert queued["status"] == "pending"

    listed = (await answer(await api.get("/api/v1/tasks", headers=BOB)))["tasks"]
    assert [(t["status"], t["started_at"], t["finished_at"], t["duration"]) for t in listed] == [
        ("pending", None, None, None)
    ]
    await answer(await api.post(f"/api/v1/tasks/{running}/cancel", headers=ALICE))
    assert await finished(api, queued["task_id"], BOB) == "completed"
    after = (await answer(await api.get("/api/v1/tasks", headers=BOB)))["tasks"][0]
    assert after["created_at"] <= after["started_at"] <= after["finished_at"]
    canceled = (await answer(await api.get("/api/v1/tasks?status=canceled", headers=ALICE)))["tasks"]
    assert [t["task_id"] for t in canceled] == [running]


async def test_a_failed_task_counts_the_tokens_of_its_model_calls(
    api: Client, model_server: ScriptedModelServer
) -> None:
    # An unknown tool is the model's mistake (a tool result, no sandbox); one iteration allowed: it fails.
    model_server.add(
        ToolCalls([Call("no_such_tool", {})], usage=Usage(prompt_tokens=40, completion_tokens=4))
    )
    body = {"message": "use a tool", "max_iterations": 1}
    task_id = (await answer(await api.post("/api/v1/messages", json=body, headers=ALICE), 202))["task_id"]
    assert await finished(api, task_id) == "failed"

    (task,) = (await answer(await api.get("/api/v1/tasks", headers=ALICE)))["tasks"]

    assert task["usage"] == {"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44}
    assert task["started_at"] <= task["finished_at"] and "max_iterations" in task["error"]

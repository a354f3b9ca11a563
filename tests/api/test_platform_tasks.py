"""``/v1/tasks`` over HTTP, on both engines: the lifecycle and its money, every refusal in the /v1
envelope, Idempotency-Key on the PUTs, and a house agent doing a task with the scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import STORE
from tests.api.conftest import ClientMaker
from tests.conftest import assert_ledger_balanced
from tests.fakes import Call, Error, Reply, ScriptedModelServer, ToolCalls

pytestmark = pytest.mark.both_engines

KEYS = "alice:tok-a,bob:tok-b,carol:tok-c"
ALICE = {"Authorization": "Bearer tok-a"}
BOB = {"Authorization": "Bearer tok-b"}
CAROL = {"Authorization": "Bearer tok-c"}

TASK = {
    "title": "A股每日复盘报告",
    "description": "对今日A股市场进行技术分析,撰写复盘报告",
    "required_capabilities": ["stock_analysis", "text_generation"],
    "budget": 500,
}


@pytest.fixture
async def v1(make_client: ClientMaker) -> AsyncIterator[TestClient[Any, Any]]:
    """The worker with three operator users (nodes with the signup grant); the ledger balances after."""
    client = await make_client(api_keys=KEYS)
    yield client
    await assert_ledger_balanced(client.app[STORE])


async def data(response: Any, status: int = 200) -> Any:
    """``data`` of a successful /v1 answer with ``status``."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["code"] == 0 and isinstance(body["timestamp"], str), body
    return body["data"]


async def refused(response: Any, status: int) -> str:
    """The message of a /v1 error answer with ``status`` (code = status, data null)."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"code", "message", "data", "timestamp"}, body
    assert body["code"] == status and body["data"] is None
    message: str = body["message"]
    return message


async def wallet(client: TestClient[Any, Any], headers: dict[str, str]) -> Any:
    return await data(await client.get("/v1/wallet", headers=headers))


async def publish(client: TestClient[Any, Any], **fields: Any) -> Any:
    return await data(await client.post("/v1/tasks", json=TASK | fields, headers=ALICE), 201)


async def test_publish_accept_complete_pays_the_acceptor(v1: TestClient[Any, Any]) -> None:
    task = await publish(v1)
    assert task["status"] == "open" and task["budget"] == 500 and task["publisher"] == "alice"
    assert task["required_capabilities"] == ["stock_analysis", "text_generation"]
    assert (await wallet(v1, ALICE))["balance"] == 500
    assert (await wallet(v1, ALICE))["frozen"] == 500
    task_id = task["task_id"]
    accepted = await data(await v1.put(f"/v1/tasks/{task_id}/accept", headers=BOB))
    assert (accepted["status"], accepted["acceptor"]) == ("progress", "bob")
    deliverables = {"report": "复盘报告内容...", "files": ["report.pdf"]}
    done = await data(
        await v1.put(
            f"/v1/tasks/{task_id}/complete",
            json={"deliverables": deliverables, "quality_notes": "包含涨跌停板分析"},
            headers=BOB,
        )
    )
    assert done["status"] == "done" and done["deliverables"] == deliverables
    assert (await data(await v1.get(f"/v1/tasks/{task_id}", headers=CAROL)))["status"] == "done"
    bob = await wallet(v1, BOB)
    assert (bob["balance"], bob["frozen"], bob["total_earned"]) == (1500, 0, 500)
    alice = await wallet(v1, ALICE)
    assert (alice["balance"], alice["frozen"], alice["total_spent"]) == (500, 0, 500)
    agent = await data(await v1.get("/v1/agents/bob", headers=ALICE))
    assert agent["completed_tasks"] == 1
    statement = await data(await v1.get("/v1/transactions", headers=ALICE))
    assert [(t["type"], t["amount"], t["task_id"]) for t in statement["items"][:2]] == [
        ("escrow_release", -500, task_id),
        ("escrow_hold", 0, task_id),
    ]


async def test_amounts_are_exact_and_checked(v1: TestClient[Any, Any]) -> None:
    task = await publish(v1, budget=12.5)
    assert task["budget"] == 12.5
    assert (await wallet(v1, ALICE))["frozen"] == 12.5
    for budget in (-5, 0, 12.345, "500", True, None):
        await refused(await v1.post("/v1/tasks", json=TASK | {"budget": budget}, headers=ALICE), 400)
    await refused(await v1.post("/v1/tasks", data=b'{"budget": NaN}', headers=ALICE), 400)
    message = await refused(await v1.post("/v1/tasks", json=TASK | {"budget": 988}, headers=ALICE), 409)
    assert "insufficient" in message
    assert (await wallet(v1, ALICE))["balance"] == 987.5


async def test_every_refusal_is_in_the_envelope(v1: TestClient[Any, Any]) -> None:
    await refused(await v1.get("/v1/tasks"), 401)
    await refused(await v1.post("/v1/tasks", json=TASK), 401)
    missing = {k: v for k, v in TASK.items() if k != "title"}
    await refused(await v1.post("/v1/tasks", json=missing, headers=ALICE), 400)
    await refused(
        await v1.post("/v1/tasks", json=TASK | {"deadline": "2001-01-01T00:00:00"}, headers=ALICE), 400
    )
    await refused(await v1.post("/v1/tasks", json=TASK | {"assignee": "nobody"}, headers=ALICE), 400)
    await refused(await v1.get("/v1/tasks?page_size=101", headers=ALICE), 400)
    await refused(await v1.get("/v1/tasks?page_size=0", headers=ALICE), 400)
    await refused(await v1.get("/v1/tasks?status=finished", headers=ALICE), 400)
    for method, path in (
        ("GET", "/v1/tasks/task_missing"),
        ("PUT", "/v1/tasks/task_missing/accept"),
        ("PUT", "/v1/tasks/task_missing/cancel"),
    ):
        await refused(await v1.request(method, path, headers=BOB), 404)
    task_id = (await publish(v1))["task_id"]
    await refused(await v1.put(f"/v1/tasks/{task_id}/accept", headers=ALICE), 403)
    await refused(await v1.put(f"/v1/tasks/{task_id}/cancel", headers=BOB), 403)
    await refused(await v1.put(f"/v1/tasks/{task_id}/complete", json={"deliverables": {}}, headers=BOB), 409)
    await data(await v1.put(f"/v1/tasks/{task_id}/accept", headers=BOB))
    await refused(await v1.put(f"/v1/tasks/{task_id}/accept", headers=CAROL), 409)
    await refused(
        await v1.put(f"/v1/tasks/{task_id}/complete", json={"deliverables": {}}, headers=CAROL), 403
    )
    await refused(await v1.put(f"/v1/tasks/{task_id}/complete", json={}, headers=BOB), 400)
    await refused(await v1.put(f"/v1/tasks/{task_id}/cancel", headers=ALICE), 409)


async def test_cancel_refunds_the_publisher(v1: TestClient[Any, Any]) -> None:
    task_id = (await publish(v1))["task_id"]
    canceled = await data(await v1.put(f"/v1/tasks/{task_id}/cancel", headers=ALICE))
    assert canceled["status"] == "canceled"
    alice = await wallet(v1, ALICE)
    assert (alice["balance"], alice["frozen"]) == (1000, 0)
    await refused(await v1.put(f"/v1/tasks/{task_id}/accept", headers=BOB), 409)


async def test_lists_filter_and_page(v1: TestClient[Any, Any]) -> None:
    ids = [(await publish(v1, budget=1, required_capabilities=[f"cap{i % 2}"]))["task_id"] for i in range(3)]
    await data(await v1.put(f"/v1/tasks/{ids[0]}/accept", headers=BOB))
    page = await data(await v1.get("/v1/tasks?page=1&page_size=2", headers=BOB))
    assert (page["total"], page["page"], page["page_size"], page["has_more"]) == (3, 1, 2, True)
    assert len(page["items"]) == 2
    last = await data(await v1.get("/v1/tasks?page=2&page_size=2", headers=BOB))
    assert last["has_more"] is False and len(last["items"]) == 1
    cap0 = await data(await v1.get("/v1/tasks?capability=cap0", headers=BOB))
    assert sorted(t["task_id"] for t in cap0["items"]) == sorted([ids[0], ids[2]])
    progress = await data(await v1.get("/v1/tasks?status=progress", headers=BOB))
    assert [t["task_id"] for t in progress["items"]] == [ids[0]]


async def test_a_deadline_is_iso_8601_and_utc_unless_it_says(v1: TestClient[Any, Any]) -> None:
    naive = await publish(v1, budget=1, deadline="2999-03-28T08:00:00")
    assert naive["deadline"] == "2999-03-28T08:00:00+00:00"
    offset = await publish(v1, budget=1, deadline="2999-03-28T08:00:00+08:00")
    assert offset["deadline"] == "2999-03-28T00:00:00+00:00"


async def test_the_puts_take_an_idempotency_key(v1: TestClient[Any, Any]) -> None:
    task_id = (await publish(v1))["task_id"]
    key = {"Idempotency-Key": "accept-1"}
    first = await v1.put(f"/v1/tasks/{task_id}/accept", headers=BOB | key)
    again = await v1.put(f"/v1/tasks/{task_id}/accept", headers=BOB | key)
    assert (await data(again))["status"] == "progress"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await again.json()
    body = {"deliverables": {"report": "r"}}
    key = {"Idempotency-Key": "complete-1"}
    responses = [
        await v1.put(f"/v1/tasks/{task_id}/complete", json=body, headers=BOB | key) for _ in range(2)
    ]
    assert [(await data(r))["status"] for r in responses] == ["done", "done"]
    assert (await wallet(v1, BOB))["balance"] == 1500  # paid once


async def test_concurrent_requests_move_the_money_once(v1: TestClient[Any, Any]) -> None:
    task_id = (await publish(v1))["task_id"]
    accepts = await asyncio.gather(
        *(v1.put(f"/v1/tasks/{task_id}/accept", headers=h) for h in (BOB, CAROL, BOB, CAROL))
    )
    assert sorted(r.status for r in accepts) == [200, 409, 409, 409]
    acceptor = (await data(await v1.get(f"/v1/tasks/{task_id}", headers=ALICE)))["acceptor"]
    headers = BOB if acceptor == "bob" else CAROL
    body = {"deliverables": {"report": "r"}}
    results = await asyncio.gather(
        v1.put(f"/v1/tasks/{task_id}/complete", json=body, headers=headers),
        v1.put(f"/v1/tasks/{task_id}/complete", json=body, headers=headers),
        v1.put(f"/v1/tasks/{task_id}/cancel", headers=ALICE),
    )
    assert sorted(r.status for r in results) == [200, 409, 409]
    assert (await wallet(v1, headers))["balance"] == 1500


async def test_the_routes_are_in_the_openapi_document(v1: TestClient[Any, Any]) -> None:
    document = await (await v1.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/v1/tasks"]) == {"get", "post"}
    for action in ("accept", "complete", "cancel"):
        assert "put" in paths[f"/v1/tasks/{{task_id}}/{action}"]
    assert "get" in paths["/v1/tasks/{task_id}"]


async def test_a_house_agent_does_the_task_and_is_paid(
    v1: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo 复盘 > /workspace/report.txt"})]),
            Reply("报告已写入 report.txt"),
        ]
    )
    task = await publish(v1, assignee="general", budget=50)
    assert (task["status"], task["acceptor"]) == ("progress", "general")
    run_id = task["run_id"]
    assert run_id
    # The publisher follows the run on the task API, as any of its tasks.
    events = await v1.get(f"/api/v1/tasks/{run_id}/events", headers=ALICE)
    assert events.status == 200 and "run_completed" in await events.text()
    done = await _until_settled(v1, task["task_id"])
    assert done["status"] == "done"
    assert done["deliverables"] == {
        "report": "报告已写入 report.txt",
        "files": ["report.txt"],
        "run_id": run_id,
    }
    assert (await data(await v1.get("/v1/agents/general", headers=ALICE)))["completed_tasks"] == 1
    alice = await wallet(v1, ALICE)
    assert (alice["balance"], alice["frozen"]) == (950, 0)
    model_server.assert_script_consumed()


async def test_a_house_agent_whose_run_fails_refunds(
    v1: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Error(status=400, message="bad request")])
    task = await publish(v1, assignee="general", budget=50)
    failed = await _until_settled(v1, task["task_id"])
    assert failed["status"] == "failed" and "run failed" in failed["quality_notes"]
    alice = await wallet(v1, ALICE)
    assert (alice["balance"], alice["frozen"]) == (1000, 0)


async def _until_settled(client: TestClient[Any, Any], task_id: str) -> Any:
    """The task once its house agent's run has been settled (settled as the run ends, beside the request)."""
    for _ in range(600):
        task = await data(await client.get(f"/v1/tasks/{task_id}", headers=ALICE))
        if task["status"] != "progress":
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} still in progress")

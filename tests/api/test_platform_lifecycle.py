"""The platform end to end with nodes that registered through the API, on both engines: two nodes
(publish → accept → complete → rate, shared memory), then three (an assigned task, a canceled one,
two acceptors rated differently), with every node's credits and the ledger checked at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import STORE
from tests.api.conftest import ClientMaker
from tests.conftest import assert_ledger_balanced

pytestmark = pytest.mark.both_engines

Headers = dict[str, str]


@pytest.fixture
async def v1(make_client: ClientMaker) -> AsyncIterator[TestClient[Any, Any]]:
    client = await make_client(registration="open")
    yield client
    await assert_ledger_balanced(client.app[STORE])


async def data(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["code"] == 0, body
    return body["data"]


async def code(response: Any) -> int:
    body = await response.json()
    assert body["code"] == response.status and body["data"] is None, body
    return response.status


async def register(v1: TestClient[Any, Any], username: str, capabilities: list[str]) -> Headers:
    body = {"username": username, "email": f"{username}@example.com", "capabilities": capabilities}
    credentials = await data(await v1.post("/v1/auth/register", json=body))
    assert credentials["node_id"] == username
    return {"Authorization": f"Bearer {credentials['api_key']}"}


async def publish(v1: TestClient[Any, Any], headers: Headers, budget: float, **fields: Any) -> str:
    task = {"title": "任务", "description": "描述", "required_capabilities": ["analysis"], "budget": budget}
    task_id: str = (await data(await v1.post("/v1/tasks", json=task | fields, headers=headers), 201))[
        "task_id"
    ]
    return task_id


async def deliver(v1: TestClient[Any, Any], task_id: str, headers: Headers) -> None:
    await data(await v1.put(f"/v1/tasks/{task_id}/accept", headers=headers))
    body = {"deliverables": {"report": f"report of {task_id}"}, "quality_notes": "ok"}
    assert (await data(await v1.put(f"/v1/tasks/{task_id}/complete", json=body, headers=headers)))[
        "status"
    ] == "done"


async def rate(
    v1: TestClient[Any, Any], headers: Headers, agent: str, task_id: str, score: float, on_time: bool
) -> Any:
    body = {"agent_id": agent, "task_id": task_id, "quality_score": score, "on_time": on_time}
    return await data(await v1.post("/v1/trust/rate", json=body, headers=headers))


async def balance(v1: TestClient[Any, Any], headers: Headers) -> tuple[float, float]:
    wallet = await data(await v1.get("/v1/wallet", headers=headers))
    return wallet["balance"], wallet["frozen"]


async def test_two_nodes_trade_rate_and_share_memory(v1: TestClient[Any, Any]) -> None:
    alice = await register(v1, "alice", ["writing"])
    bob = await register(v1, "bob", ["analysis"])
    assert [
        a["agent_id"]
        for a in (await data(await v1.get("/v1/agents?capability=analysis", headers=alice)))["items"]
    ] == ["bob"]

    task_id = await publish(v1, alice, 250.5)
    assert await balance(v1, alice) == (749.5, 250.5)
    await deliver(v1, task_id, bob)
    rated = await rate(v1, alice, "bob", task_id, 4.5, True)

    assert await balance(v1, alice) == (749.5, 0)
    assert await balance(v1, bob) == (1250.5, 0)
    agent = await data(await v1.get("/v1/agents/bob", headers=alice))
    assert agent["completed_tasks"] == 1 and agent["trust_score"] == pytest.approx(rated["trust_score"])
    note = {"content": f"{task_id} 交付复盘", "participants": ["alice"], "tags": ["复盘"]}
    entry = await data(await v1.post("/v1/memory", json=note, headers=bob), 201)
    shared = await data(await v1.get("/v1/memory", params={"q": "复盘"}, headers=alice))
    assert [e["id"] for e in shared["items"]] == [entry["id"]]
    statement = await data(await v1.get("/v1/transactions", headers=bob))
    assert [(t["type"], t["amount"], t["balance_after"]) for t in statement["items"]] == [
        ("escrow_release", 250.5, 1250.5),
        ("grant", 1000, 1000),
    ]


async def test_three_nodes_with_an_assigned_and_a_canceled_task(v1: TestClient[Any, Any]) -> None:
    alice = await register(v1, "alice", ["writing"])
    bob = await register(v1, "bob", ["analysis"])
    carol = await register(v1, "carol", ["analysis", "translation"])

    open_task = await publish(v1, alice, 100)
    for_carol = await publish(v1, alice, 200, assignee="carol")
    dropped = await publish(v1, alice, 300)
    assert await balance(v1, alice) == (400, 600)

    assert await code(await v1.put(f"/v1/tasks/{for_carol}/accept", headers=bob)) == 403  # assigned
    await deliver(v1, open_task, bob)
    await data(await v1.put(f"/v1/tasks/{for_carol}/accept", headers=carol))
    complete = {"deliverables": {"report": "not mine"}}
    assert await code(await v1.put(f"/v1/tasks/{for_carol}/complete", json=complete, headers=bob)) == 403
    await data(
        await v1.put(
            f"/v1/tasks/{for_carol}/complete", json={"deliverables": {"report": "译文"}}, headers=carol
        )
    )
    assert await code(await v1.put(f"/v1/tasks/{dropped}/cancel", headers=bob)) == 403
    assert (await data(await v1.put(f"/v1/tasks/{dropped}/cancel", headers=alice)))["status"] == "canceled"
    assert await code(await v1.put(f"/v1/tasks/{dropped}/accept", headers=carol)) == 409

    assert (
        await code(
            await v1.post(
                "/v1/trust/rate",
                json={"agent_id": "carol", "task_id": for_carol, "quality_score": 5, "on_time": True},
                headers=bob,
            )
        )
        == 403
    )
    await rate(v1, alice, "bob", open_task, 5.0, True)
    await rate(v1, alice, "carol", for_carol, 3.0, False)

    ranked = await data(await v1.get("/v1/agents?capability=analysis", headers=carol))
    assert [a["agent_id"] for a in ranked["items"]] == ["bob", "carol"]  # most trusted first
    trusted = await data(await v1.get("/v1/agents?min_trust=0.5", headers=carol))
    assert "bob" in [a["agent_id"] for a in trusted["items"]]
    assert "carol" not in [a["agent_id"] for a in trusted["items"]]
    assert await balance(v1, alice) == (700, 0)
    assert await balance(v1, bob) == (1100, 0)
    assert await balance(v1, carol) == (1200, 0)
    done = await data(await v1.get("/v1/tasks?status=done", headers=bob))
    assert {t["task_id"] for t in done["items"]} == {open_task, for_carol}

    note = {"content": "三方会议纪要", "participants": ["bob", "carol"], "tags": ["会议"]}
    everyone = await data(await v1.post("/v1/memory", json=note, headers=alice), 201)
    private = await data(
        await v1.post(
            "/v1/memory",
            json={"content": "只给alice", "participants": ["alice"], "tags": ["会议"]},
            headers=bob,
        ),
        201,
    )
    seen = {
        name: [
            e["id"]
            for e in (await data(await v1.get("/v1/memory?tag=%E4%BC%9A%E8%AE%AE", headers=headers)))["items"]
        ]
        for name, headers in (("alice", alice), ("bob", bob), ("carol", carol))
    }
    assert seen == {
        "alice": [private["id"], everyone["id"]],
        "bob": [private["id"], everyone["id"]],
        "carol": [everyone["id"]],
    }

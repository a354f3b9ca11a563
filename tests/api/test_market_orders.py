"""Orders of published capabilities over HTTP, on both engines: prices, escrow and settlement.

Bob publishes a priced capability; Alice orders it (``POST /api/v1/transactions``, A2A
``tasks/send``, or invoke); the order's task runs with the scripted model, and the money is
checked after each end: completed pays Bob, failed and canceled refund Alice. Every test ends
with the ledger balanced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import STORE
from runtime.store.capability_orders import NewOrder
from runtime.store.platform_nodes import set_trust
from tests.api.conftest import ClientMaker
from tests.conftest import assert_ledger_balanced
from tests.fakes import Error, Hang, Reply, ScriptedModelServer

pytestmark = pytest.mark.both_engines

KEYS = "alice:tok-a,bob:tok-b,carol:tok-c"
ALICE = {"X-Api-Key": "tok-a", "X-Platform-User-Id": "alice"}
BOB = {"X-Api-Key": "tok-b", "X-Platform-User-Id": "bob"}
CAROL = {"X-Api-Key": "tok-c", "X-Platform-User-Id": "carol"}
CAP = "cap_ocr_invoice_v1"
SECRET = "You are Bob's invoice reader. Secret recipe: read every digit twice."


@pytest.fixture
async def market(make_client: ClientMaker) -> AsyncIterator[TestClient[Any, Any]]:
    """Three operator users (1000 credits each) and Bob's public capability at 25 credits."""
    client = await make_client(api_keys=KEYS)
    await publish(client, CAP, price=25)
    yield client
    await assert_ledger_balanced(client.app[STORE])


async def data(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["code"] == 0 and isinstance(body["timestamp"], int), body
    return body["data"]


async def refused(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert (body["code"], body["data"]) == (status, None) and isinstance(body["timestamp"], int), body
    message: str = body["message"]
    return message


async def publish(client: TestClient[Any, Any], cap_id: str, **fields: Any) -> Any:
    spec = {
        "id": cap_id,
        "name": "Invoice OCR",
        "description": "Reads an invoice",
        "category": "ocr",
        "system_prompt": SECRET,
        "default_input": "Read the invoice.",
        "allowed_tools": [],
        "visibility": "public",
    }
    return await data(await client.post("/api/v1/capabilities", json=spec | fields, headers=BOB), 201)


async def wallet(client: TestClient[Any, Any], headers: dict[str, str]) -> tuple[Any, Any, Any, Any]:
    w = await data(await client.get("/api/v1/wallet", headers=headers))
    return w["balance"], w["frozen"], w["total_earned"], w["total_spent"]


async def order(client: TestClient[Any, Any], key: str = "k-1", **fields: Any) -> Any:
    response = await client.post(
        "/api/v1/transactions",
        json={"capability_id": CAP, "demand_id": None, "context_id": None, "booked_hours": None} | fields,
        headers=ALICE | {"Idempotency-Key": key},
    )
    return await data(response, 201)


async def settled(client: TestClient[Any, Any], order_id: str) -> Any:
    """The order once it is settled (by the worker that ended its task)."""
    for _ in range(600):
        found = await data(await client.get(f"/api/v1/transactions/{order_id}", headers=ALICE))
        if found["status"] not in ("pending", "running"):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} still open")


async def rpc(client: TestClient[Any, Any], method: str, params: dict[str, Any]) -> Any:
    response = await client.post(
        "/a2a", json={"jsonrpc": "2.0", "id": "1", "method": method, "params": params}, headers=ALICE
    )
    assert response.status == 200
    return await response.json()


async def test_a_public_capability_is_listed_for_everyone_without_its_prompt(
    market: TestClient[Any, Any],
) -> None:
    await publish(market, "bob-private", visibility="private", price=5)
    listed = await data(await market.get("/api/v1/capabilities", params={"page_size": 100}, headers=ALICE))
    mine = {c["id"]: c for c in listed["items"]}
    assert "bob-private" not in mine
    shown = mine[CAP]
    assert (shown["owner"], shown["price"], shown["visibility"], shown["system_prompt"]) == (
        "bob",
        25,
        "public",
        None,
    )
    got = await data(await market.get(f"/api/v1/capabilities/{CAP}", headers=CAROL))
    assert got["system_prompt"] is None and got["price"] == 25
    own = await data(await market.get(f"/api/v1/capabilities/{CAP}", headers=BOB))
    assert own["system_prompt"] == SECRET
    await refused(await market.get("/api/v1/capabilities/bob-private", headers=ALICE), 404)
    # A public id is unique among public capabilities; prices are exact amounts.
    message = await refused(
        await market.post(
            "/api/v1/capabilities",
            json={"id": CAP, "name": "copy", "visibility": "public"},
            headers=CAROL,
        ),
        409,
    )
    assert CAP in message
    for price in (-1, 0.001, "5", True):
        body = {"id": "p", "name": "p", "visibility": "public", "price": price}
        await refused(await market.post("/api/v1/capabilities", json=body, headers=CAROL), 400)


async def test_a_capability_is_rated_with_its_owners_trust_score(
    market: TestClient[Any, Any],
) -> None:
    """``rating`` is the trust score of the node delivering it: 0.5 for a new node, then as rated."""
    store = market.app[STORE]

    async def ratings(headers: dict[str, str]) -> dict[str, Any]:
        page = await data(
            await market.get("/api/v1/capabilities", params={"page_size": 100}, headers=headers)
        )
        return {c["id"]: c["rating"] for c in page["items"]}

    bob = await store.nodes.get_node("bob")
    assert bob is not None and bob.trust_score == 0.5
    listed = await ratings(ALICE)
    assert listed[CAP] == 0.5
    # A global capability is rated as its house agent.
    house = await store.nodes.get_node("general")
    assert house is not None and house.kind == "house" and listed["general"] == house.trust_score
    async with store.transaction() as conn:
        await set_trust(conn, "bob", 0.8, 3)
    assert (await ratings(CAROL))[CAP] == 0.8
    assert (await data(await market.get(f"/api/v1/capabilities/{CAP}", headers=ALICE)))["rating"] == 0.8
    assert (await data(await market.get(f"/api/v1/capabilities/{CAP}", headers=BOB)))["rating"] == 0.8
    assert (await publish(market, "bob-second"))["rating"] == 0.8


async def test_a_completed_order_pays_the_owner(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("Invoice total: 42.00")])
    placed = await order(market, message="Read invoice #7")
    assert (placed["capability_id"], placed["amount"], placed["buyer"], placed["seller"]) == (
        CAP,
        25,
        "alice",
        "bob",
    )
    assert placed["status"] in ("running", "completed") and placed["task_id"] == placed["id"]
    done = await settled(market, placed["id"])
    assert done["status"] == "completed" and done["reason"] is None
    assert await wallet(market, ALICE) == (975, 0, 0, 25)
    assert await wallet(market, BOB) == (1025, 0, 25, 0)
    # The capability ran with Bob's system prompt on Alice's message.
    request = model_server.requests[-1]
    assert request["messages"][0] == {"role": "system", "content": SECRET}
    assert request["messages"][-1]["content"] == "Read invoice #7"
    # The transaction id is an A2A task id: tasks/get carries the answer, in the flat shape.
    task = (await rpc(market, "tasks/get", {"id": placed["id"]}))["result"]
    assert task["status"] == "completed" and "Invoice total: 42.00" in str(task)
    # Buyer and seller both list it; anyone else gets a 404.
    for who in (ALICE, BOB):
        page = await data(await market.get("/api/v1/transactions", headers=who))
        assert [t["id"] for t in page["items"]] == [placed["id"]] and page["total"] == 1
    await refused(await market.get(f"/api/v1/transactions/{placed['id']}", headers=CAROL), 404)
    assert (await data(await market.get("/api/v1/transactions", headers=CAROL)))["items"] == []


async def test_a_failed_order_is_refunded(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Error(status=400, message="bad request")])
    placed = await order(market)
    failed = await settled(market, placed["id"])
    assert failed["status"] == "failed" and "failed" in failed["reason"]
    assert await wallet(market, ALICE) == (1000, 0, 0, 0)
    assert await wallet(market, BOB) == (1000, 0, 0, 0)


async def test_a_canceled_order_is_refunded(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Hang(30)])
    placed = await order(market)
    assert await wallet(market, ALICE) == (975, 25, 0, 0)  # held while it runs
    canceled = (await rpc(market, "tasks/cancel", {"id": placed["id"]}))["result"]
    assert canceled["status"] == "canceled"
    ended = await settled(market, placed["id"])
    assert ended["status"] == "canceled"
    assert await wallet(market, ALICE) == (1000, 0, 0, 0)
    assert await wallet(market, BOB) == (1000, 0, 0, 0)


async def test_short_of_the_price_is_409_and_nothing_runs(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    await publish(market, "cap_expensive", price=1000.01)
    response = await market.post(
        "/api/v1/transactions", json={"capability_id": "cap_expensive"}, headers=ALICE
    )
    assert "insufficient" in await refused(response, 409)
    assert await wallet(market, ALICE) == (1000, 0, 0, 0)
    assert (await data(await market.get("/api/v1/transactions", headers=ALICE)))["total"] == 0
    assert model_server.requests == []
    # Not orderable: unknown, private to another, global, or your own.
    await publish(market, "bob-private", visibility="private", price=5)
    for capability_id, status in (("nope", 404), ("bob-private", 404), ("general", 400)):
        body = {"capability_id": capability_id}
        await refused(await market.post("/api/v1/transactions", json=body, headers=ALICE), status)
    await refused(await market.post("/api/v1/transactions", json={"capability_id": CAP}, headers=BOB), 400)


async def test_a_retry_answers_the_same_transaction_and_charges_once(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("one")])
    first = await order(market, key="same")
    again = await market.post(
        "/api/v1/transactions",
        json={"capability_id": CAP, "demand_id": None, "context_id": None, "booked_hours": None},
        headers=ALICE | {"Idempotency-Key": "same"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await data(again, 201))["id"] == first["id"]
    other = await market.post(
        "/api/v1/transactions", json={"capability_id": CAP}, headers=ALICE | {"Idempotency-Key": "same"}
    )
    await refused(other, 422)
    await settled(market, first["id"])
    assert await wallet(market, ALICE) == (975, 0, 0, 25)


async def test_racing_retries_charge_once(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("once")])
    body = {"capability_id": CAP}

    async def attempt() -> Any:
        return await market.post(
            "/api/v1/transactions", json=body, headers=ALICE | {"Idempotency-Key": "race"}
        )

    answers = await asyncio.gather(*(attempt() for _ in range(8)))
    ids = set()
    for answer in answers:
        # A retry that arrives while the first is being placed is told so (409); none pays again.
        assert answer.status in (201, 409), await answer.text()
        if answer.status == 201:
            ids.add((await answer.json())["data"]["id"])
    assert len(ids) == 1
    (order_id,) = ids
    replay = await attempt()
    assert (await data(replay, 201))["id"] == order_id
    await settled(market, order_id)
    assert await wallet(market, ALICE) == (975, 0, 0, 25)
    page = await data(await market.get("/api/v1/transactions", headers=ALICE))
    assert [t["id"] for t in page["items"]] == [order_id]


async def test_a2a_send_and_invoke_of_a_priced_capability_are_orders(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.extend([Reply("via a2a"), Reply("via invoke"), Reply("free run")])
    sent = (await rpc(market, "tasks/send", {"capability_id": CAP}))["result"]
    by_a2a = await settled(market, sent["id"])
    assert by_a2a["status"] == "completed" and by_a2a["amount"] == 25
    invoked = await data(await market.post(f"/api/v1/capabilities/{CAP}/invoke", headers=ALICE), 202)
    assert invoked["transaction_id"] == invoked["task_id"]
    assert (await settled(market, invoked["task_id"]))["status"] == "completed"
    assert await wallet(market, ALICE) == (950, 0, 0, 50)
    assert await wallet(market, BOB) == (1050, 0, 50, 0)
    # A free public capability runs for anyone without an order; its owner runs its own for free.
    await publish(market, "cap_free", price=0)
    free = await data(await market.post("/api/v1/capabilities/cap_free/invoke", headers=ALICE), 202)
    assert free["transaction_id"] is None
    await refused(await market.get(f"/api/v1/transactions/{free['task_id']}", headers=ALICE), 404)
    assert (await data(await market.get("/api/v1/transactions", headers=ALICE)))["total"] == 2


async def test_an_order_left_open_by_a_stopped_worker_is_refunded_at_start_up(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    first = await make_client(api_keys=KEYS)
    await publish(first, CAP, price=25)
    # The worker stopped after paying, before the task started: the order is open, its task absent.
    store = first.app[STORE]
    await store.capability_orders.place(
        NewOrder(id="order-lost", buyer="alice", seller="bob", capability_id=CAP, amount=2500, created_at=1.0)
    )
    assert await wallet(first, ALICE) == (975, 25, 0, 0)
    await first.close()
    second = await make_client(api_keys=KEYS)
    lost = await data(await second.get("/api/v1/transactions/order-lost", headers=ALICE))
    assert lost["status"] == "failed" and "stopped" in lost["reason"]
    assert await wallet(second, ALICE) == (1000, 0, 0, 0)
    await assert_ledger_balanced(second.app[STORE])

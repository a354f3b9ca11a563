"""``/api/v1/recommendations/feed`` and ``/api/v1/public/*`` over HTTP, on both engines: the ranking
(matching first, then trust, then newest), a cursor walk with items published between pages (each
item once), refused cursors (forged, another caller's, stale), and the public routes without a key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import STORE
from runtime.store.platform_nodes import set_trust
from tests.api.conftest import ClientMaker
from tests.conftest import assert_ledger_balanced

pytestmark = pytest.mark.both_engines

KEYS = "alice:tok-a,bob:tok-b,carol:tok-c"
ALICE = {"X-Api-Key": "tok-a", "X-Platform-User-Id": "alice"}
BOB = {"X-Api-Key": "tok-b"}
CAROL = {"X-Api-Key": "tok-c"}


@pytest.fixture
async def market(make_client: ClientMaker) -> AsyncIterator[TestClient[Any, Any]]:
    client = await make_client(api_keys=KEYS)
    yield client
    await assert_ledger_balanced(client.app[STORE])


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["code"] == 0 and isinstance(body["timestamp"], int), body
    return body["data"]


async def set_capabilities(client: TestClient[Any, Any], caps: list[str]) -> None:
    response = await client.put("/v1/agents/alice", json={"capabilities": caps}, headers=ALICE)
    assert response.status == 200, await response.text()


async def task(client: TestClient[Any, Any], headers: dict[str, str], title: str, caps: list[str]) -> str:
    body = {"title": title, "description": "d", "required_capabilities": caps, "budget": 1}
    response = await client.post("/v1/tasks", json=body, headers=headers)
    assert response.status == 201, await response.text()
    task_id: str = (await response.json())["data"]["task_id"]
    return task_id


async def capability(
    client: TestClient[Any, Any], headers: dict[str, str], cap_id: str, category: str
) -> str:
    body = {"id": cap_id, "name": cap_id, "category": category, "visibility": "public", "price": 2}
    await ok(await client.post("/api/v1/capabilities", json=body, headers=headers), 201)
    return cap_id


async def test_matching_items_come_first_then_trust_then_newest(market: TestClient[Any, Any]) -> None:
    await set_capabilities(market, ["ocr"])
    old_bob = await task(market, BOB, "old", ["translation"])
    carol_cap = await capability(market, CAROL, "carol-cap", "writing")
    match_task = await task(market, BOB, "match", ["ocr", "translation"])
    match_cap = await capability(market, BOB, "bob-ocr", "ocr")
    new_bob = await task(market, BOB, "new", [])
    own = await task(market, ALICE, "mine", ["ocr"])
    async with market.app[STORE].transaction() as conn:
        await set_trust(conn, "carol", 0.9, 3)  # carol's items outrank bob's newer ones

    items = (await ok(await market.get("/api/v1/recommendations/feed", headers=ALICE)))["items"]

    assert [item["id"] for item in items] == [match_cap, match_task, carol_cap, new_bob, old_bob]
    assert own not in [item["id"] for item in items]
    assert [item["matched"] for item in items] == [True, True, False, False, False]
    first = items[0]
    assert (first["type"], first["owner"], first["amount"], first["tags"]) == (
        "capability",
        "bob",
        2,
        ["ocr"],
    )
    assert items[2]["owner_trust"] == 0.9


async def test_a_walk_shows_every_item_once_while_items_are_published(market: TestClient[Any, Any]) -> None:
    await set_capabilities(market, ["ocr"])
    before = {await task(market, BOB, f"t{i}", ["ocr"] if i % 3 == 0 else []) for i in range(12)}
    before |= {await capability(market, CAROL, f"c{i}", "ocr" if i % 2 else "misc") for i in range(5)}
    seen: list[str] = []
    published: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"page_size": 3} | ({"cursor": cursor} if cursor else {})
        data = await ok(await market.get("/api/v1/recommendations/feed", params=params, headers=ALICE))
        seen += [item["id"] for item in data["items"]]
        # Between pages: new items, matching and not, ranked anywhere.
        published.add(await task(market, BOB, f"late{len(published)}", ["ocr"]))
        published.add(await task(market, CAROL, f"late{len(published)}", []))
        if not data["has_more"]:
            break
        cursor = data["next_cursor"]

    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert set(seen) - before <= published


async def test_cursors_are_refused_when_forged_foreign_or_stale(market: TestClient[Any, Any]) -> None:
    for i in range(3):
        await task(market, CAROL, f"t{i}", [])
    page = await ok(await market.get("/api/v1/recommendations/feed?page_size=1", headers=ALICE))
    cursor = page["next_cursor"]
    payload, _, signature = cursor.partition(".")

    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    for bad, headers in ((forged, ALICE), ("not-a-cursor", ALICE), (cursor, BOB)):
        response = await market.get("/api/v1/recommendations/feed", params={"cursor": bad}, headers=headers)
        assert response.status == 400, await response.text()
        body = await response.json()
        assert body["code"] == 400 and body["data"] is None and isinstance(body["timestamp"], int)

    await set_capabilities(market, ["ocr"])
    response = await market.get("/api/v1/recommendations/feed", params={"cursor": cursor}, headers=ALICE)
    assert response.status == 400 and "stale" in (await response.json())["message"]


async def test_public_routes_need_no_key(market: TestClient[Any, Any]) -> None:
    await capability(market, BOB, "bob-ocr", "ocr")
    await task(market, CAROL, "t", [])

    stats = await ok(await market.get("/api/v1/public/community-stats"))

    assert stats == {
        "nodes": stats["nodes"],
        "public_capabilities": 1,
        "open_tasks": 1,
        "done_tasks": 0,
        "completed_orders": 0,
        "credits_moved": 0,
    }
    assert stats["nodes"] >= 3
    document = await (await market.get("/api/v1/public/openapi.json")).json()
    assert "/api/v1/recommendations/feed" in document["paths"]
    assert (await market.get("/api/v1/recommendations/feed")).status == 401

"""``/v1/trust`` and ``/v1/memory`` over HTTP, on both engines: every refusal in the /v1 envelope,
Idempotency-Key on a rating, CJK tags and search in the query string, visibility per node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import STORE
from runtime.platform.trust import evidence, trust_score
from tests.api.conftest import ClientMaker
from tests.conftest import assert_ledger_balanced

pytestmark = pytest.mark.both_engines

KEYS = "alice:tok-a,bob:tok-b,carol:tok-c"
ALICE = {"Authorization": "Bearer tok-a"}
BOB = {"Authorization": "Bearer tok-b"}
CAROL = {"Authorization": "Bearer tok-c"}
TASK = {"title": "复盘", "description": "写复盘报告", "required_capabilities": [], "budget": 100}
NOTE = {
    "content": "2026年Q1新能源渗透率超过40%,比亚迪领先",
    "participants": ["bob"],
    "tags": ["新能源", "市场数据"],
}


@pytest.fixture
async def v1(make_client: ClientMaker) -> AsyncIterator[TestClient[Any, Any]]:
    client = await make_client(api_keys=KEYS)
    yield client
    await assert_ledger_balanced(client.app[STORE])


async def data(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["code"] == 0 and isinstance(body["timestamp"], str), body
    return body["data"]


async def refused(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"code", "message", "data", "timestamp"} and body["data"] is None, body
    assert body["code"] == status
    message: str = body["message"]
    return message


async def task_in(v1: TestClient[Any, Any], status: str) -> str:
    """A task alice published, taken by bob to ``status``."""
    task_id: str = (await data(await v1.post("/v1/tasks", json=TASK, headers=ALICE), 201))["task_id"]
    if status in ("progress", "done"):
        await data(await v1.put(f"/v1/tasks/{task_id}/accept", headers=BOB))
    if status == "done":
        body = {"deliverables": {"report": "报告"}}
        await data(await v1.put(f"/v1/tasks/{task_id}/complete", json=body, headers=BOB))
    return task_id


def rating(task_id: str, score: object = 4.8, agent_id: str = "bob") -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "task_id": task_id,
        "quality_score": score,
        "on_time": True,
        "comment": "交付专业",
    }


async def test_rating_the_acceptor_moves_its_score_in_the_registry(v1: TestClient[Any, Any]) -> None:
    task_id = await task_in(v1, "done")
    before = await data(await v1.get("/v1/agents/bob", headers=CAROL))

    rated = await data(await v1.post("/v1/trust/rate", json=rating(task_id), headers=ALICE))

    expected = trust_score(1, evidence(4.8, True))
    assert rated["trust_score"] == pytest.approx(expected) and rated["ratings_count"] == 1
    assert rated["rating"]["comment"] == "交付专业" and rated["rating"]["rater"] == "alice"
    after = await data(await v1.get("/v1/agents/bob", headers=CAROL))
    assert before["trust_score"] == 0.5 and after["trust_score"] == pytest.approx(expected)
    trust = await data(await v1.get("/v1/trust/bob", headers=CAROL))
    assert (trust["agent_id"], trust["ratings_count"], trust["has_more"]) == ("bob", 1, False)
    assert trust["trust_score"] == pytest.approx(expected)
    assert [(r["task_id"], r["quality_score"], r["on_time"]) for r in trust["ratings"]] == [
        (task_id, 4.8, True)
    ]
    listed = await data(await v1.get("/v1/agents?min_trust=0.6", headers=CAROL))
    assert [a["agent_id"] for a in listed["items"]] == ["bob"]


async def test_every_refusal_of_a_rating(v1: TestClient[Any, Any]) -> None:
    done = await task_in(v1, "done")
    progress = await task_in(v1, "progress")

    await refused(await v1.post("/v1/trust/rate", json=rating(done)), 401)
    for score in (0.5, 5.5, "4.8", True, None):
        await refused(await v1.post("/v1/trust/rate", json=rating(done, score), headers=ALICE), 400)
    await refused(await v1.post("/v1/trust/rate", data=b'{"quality_score": NaN}', headers=ALICE), 400)
    await refused(await v1.post("/v1/trust/rate", json=rating(done) | {"extra": 1}, headers=ALICE), 400)
    await refused(await v1.post("/v1/trust/rate", json=rating(done), headers=CAROL), 403)
    await refused(await v1.post("/v1/trust/rate", json=rating(done), headers=BOB), 403)
    await refused(await v1.post("/v1/trust/rate", json=rating(done, agent_id="carol"), headers=ALICE), 403)
    await refused(await v1.post("/v1/trust/rate", json=rating("task_nope"), headers=ALICE), 404)
    assert "progress" in await refused(
        await v1.post("/v1/trust/rate", json=rating(progress), headers=ALICE), 409
    )
    await data(await v1.post("/v1/trust/rate", json=rating(done), headers=ALICE))
    assert "rated already" in await refused(
        await v1.post("/v1/trust/rate", json=rating(done, 1.0), headers=ALICE), 409
    )
    await refused(await v1.get("/v1/trust/nobody", headers=ALICE), 404)
    await refused(await v1.get("/v1/trust/bob?page_size=101", headers=ALICE), 400)
    await refused(await v1.get("/v1/trust/bob"), 401)
    assert (await data(await v1.get("/v1/trust/bob", headers=ALICE)))["ratings_count"] == 1


async def test_a_retried_rating_with_its_idempotency_key_gets_the_first_answer(
    v1: TestClient[Any, Any],
) -> None:
    task_id = await task_in(v1, "done")
    headers = ALICE | {"Idempotency-Key": "rate-1"}

    first = await v1.post("/v1/trust/rate", json=rating(task_id), headers=headers)
    again = await v1.post("/v1/trust/rate", json=rating(task_id), headers=headers)

    assert (await data(first)) == (await data(again))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await data(await v1.get("/v1/trust/bob", headers=ALICE)))["ratings_count"] == 1


async def test_memory_is_read_by_author_and_participants_only(v1: TestClient[Any, Any]) -> None:
    entry = await data(await v1.post("/v1/memory", json=NOTE, headers=ALICE), 201)
    assert (entry["author"], entry["participants"], entry["tags"]) == ("alice", ["bob"], NOTE["tags"])
    assert entry["id"].startswith("mem_")

    for headers in (ALICE, BOB):
        page = await data(await v1.get("/v1/memory", params={"tag": "新能源"}, headers=headers))
        assert [e["id"] for e in page["items"]] == [entry["id"]] and page["total"] == 1
    for params in ({}, {"tag": "新能源"}, {"participant": "alice"}, {"q": "渗透率"}):
        page = await data(await v1.get("/v1/memory", params=params, headers=CAROL))
        assert (page["items"], page["total"]) == ([], 0)


async def test_memory_filters_and_search_in_the_query_string(v1: TestClient[Any, Any]) -> None:
    first = await data(await v1.post("/v1/memory", json=NOTE, headers=ALICE), 201)
    second = await data(
        await v1.post(
            "/v1/memory",
            json={"content": "芯片 40_nm", "participants": ["carol"], "tags": ["半导体"]},
            headers=ALICE,
        ),
        201,
    )

    async def ids(**params: str) -> list[str]:
        return [
            e["id"] for e in (await data(await v1.get("/v1/memory", params=params, headers=ALICE)))["items"]
        ]

    assert await ids() == [second["id"], first["id"]]
    assert await ids(tag="新能源") == [first["id"]]
    assert await ids(participant="carol") == [second["id"]]
    assert await ids(q="比亚迪") == [first["id"]]
    assert await ids(q="市场") == [first["id"]]  # a tag's substring
    assert await ids(q="40%") == [first["id"]]  # % is a character, not a wildcard
    assert await ids(q="0_n") == [second["id"]]
    assert await ids(q="40_") == [second["id"]]
    page = await data(await v1.get("/v1/memory?page=1&page_size=1", headers=ALICE))
    assert (page["total"], page["has_more"], page["page_size"]) == (2, True, 1)


async def test_memory_refusals(v1: TestClient[Any, Any]) -> None:
    await refused(await v1.post("/v1/memory", json=NOTE), 401)
    await refused(await v1.get("/v1/memory"), 401)
    message = await refused(
        await v1.post("/v1/memory", json=NOTE | {"participants": ["ghost"]}, headers=ALICE), 400
    )
    assert "ghost" in message
    await refused(await v1.post("/v1/memory", json={"tags": ["x"]}, headers=ALICE), 400)
    await refused(await v1.post("/v1/memory", json=NOTE | {"content": ""}, headers=ALICE), 400)
    await refused(await v1.get("/v1/memory?page_size=101", headers=ALICE), 400)
    await refused(await v1.get("/v1/memory?page=0", headers=ALICE), 400)
    assert (await data(await v1.get("/v1/memory", headers=ALICE)))["total"] == 0


async def test_openapi_documents_the_trust_and_memory_routes(v1: TestClient[Any, Any]) -> None:
    paths = (await (await v1.get("/openapi.json")).json())["paths"]

    assert set(paths["/v1/trust/rate"]) == {"post"}
    assert set(paths["/v1/trust/{agent_id}"]) == {"get"}
    assert set(paths["/v1/memory"]) == {"get", "post"}
    assert "201" in paths["/v1/memory"]["post"]["responses"]
    assert {p["name"] for p in paths["/v1/memory"]["get"]["parameters"]} >= {
        "participant",
        "tag",
        "q",
        "page",
        "page_size",
    }

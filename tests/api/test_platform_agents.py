"""The registry on ``/v1/agents``: house agents and operator users are nodes, filters by capability
and trust, pages, and a node edits its own entry only."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.web.keys import STORE
from runtime.store.platform_nodes import set_trust
from tests.api.conftest import ClientMaker, v1_error, v1_ok

pytestmark = pytest.mark.both_engines

ALICE = {"Authorization": "Bearer tok-a"}
BOB = {"Authorization": "Bearer tok-b"}
HOUSE = {"general", "python-analyst", "sandbox-report"}  # the built-in global capabilities


@pytest.fixture
async def platform(make_platform: ClientMaker) -> TestClient[Any, Any]:
    return await make_platform(api_keys="alice:tok-a,bob:tok-b", registration="open")


async def agents(client: TestClient[Any, Any], query: str = "") -> dict[str, Any]:
    page: dict[str, Any] = await v1_ok(await client.get(f"/v1/agents{query}", headers=ALICE))
    return page


async def test_house_agents_and_operator_users_are_listed(platform: TestClient[Any, Any]) -> None:
    page = await agents(platform)
    assert {a["agent_id"] for a in page["items"]} == HOUSE | {"alice", "bob"}
    assert (page["total"], page["page"], page["page_size"], page["has_more"]) == (5, 1, 20, False)
    house = await v1_ok(await platform.get("/v1/agents/python-analyst", headers=ALICE))
    assert house["kind"] == "house" and house["nickname"] == "Python analyst"
    assert house["capabilities"] == ["data-analysis", "python-analyst"]  # its id and its category
    assert set(house) == {
        "agent_id",
        "kind",
        "nickname",
        "capabilities",
        "trust_score",
        "ratings_count",
        "completed_tasks",
        "created_at",
    }
    assert 0 <= house["trust_score"] <= 1 and house["completed_tasks"] == 0


async def test_filters_by_capability_and_minimum_trust(platform: TestClient[Any, Any]) -> None:
    await v1_ok(
        await platform.post(
            "/v1/auth/register",
            json={
                "username": "writer",
                "email": "w@example.com",
                "capabilities": ["text_generation", "股票分析"],
            },
        )
    )
    page = await agents(platform, "?capability=text_generation")
    assert [a["agent_id"] for a in page["items"]] == ["writer"]
    assert [a["agent_id"] for a in (await agents(platform, "?capability=股票分析"))["items"]] == ["writer"]
    assert (await agents(platform, "?capability=nobody-has-it"))["total"] == 0
    async with platform.app[STORE].transaction() as conn:
        await set_trust(conn, "writer", 0.92, 3)
    trusted = await agents(platform, "?min_trust=0.9")
    assert [(a["agent_id"], a["trust_score"], a["ratings_count"]) for a in trusted["items"]] == [
        ("writer", 0.92, 3)
    ]
    both = await agents(platform, "?capability=text_generation&min_trust=0.95")
    assert both["items"] == [] and both["total"] == 0
    ordered = await agents(platform)
    assert ordered["items"][0]["agent_id"] == "writer"  # most trusted first


async def test_pages(platform: TestClient[Any, Any]) -> None:
    first, second = await agents(platform, "?page_size=2"), await agents(platform, "?page=3&page_size=2")
    assert len(first["items"]) == 2 and first["has_more"] is True and first["total"] == 5
    assert len(second["items"]) == 1 and second["has_more"] is False
    assert (await agents(platform, "?page=9&page_size=2"))["items"] == []


@pytest.mark.parametrize(
    "query", ["?page_size=101", "?page_size=0", "?page=0", "?min_trust=1.5", "?min_trust=x", "?capability="]
)
async def test_a_bad_query_is_a_400(platform: TestClient[Any, Any], query: str) -> None:
    await v1_error(await platform.get(f"/v1/agents{query}", headers=ALICE), 400)


async def test_an_unknown_agent_is_a_404(platform: TestClient[Any, Any]) -> None:
    await v1_error(await platform.get("/v1/agents/nobody", headers=ALICE), 404)
    await v1_error(await platform.put("/v1/agents/nobody", json={"nickname": "x"}, headers=ALICE), 404)


async def test_a_node_updates_its_own_entry_only(platform: TestClient[Any, Any]) -> None:
    change = {"nickname": "新昵称", "capabilities": ["coding"]}
    updated = await v1_ok(await platform.put("/v1/agents/alice", json=change, headers=ALICE))
    assert (updated["nickname"], updated["capabilities"]) == ("新昵称", ["coding"])
    assert (await v1_ok(await platform.get("/v1/agents/alice", headers=BOB)))["nickname"] == "新昵称"
    await v1_error(
        await platform.put("/v1/agents/alice", json={"nickname": "bob was here"}, headers=BOB), 403
    )
    await v1_error(await platform.put("/v1/agents/general", json={"capabilities": []}, headers=ALICE), 403)
    assert (await v1_ok(await platform.get("/v1/agents/alice", headers=BOB)))["nickname"] == "新昵称"
    only_nickname = await v1_ok(await platform.put("/v1/agents/alice", json={"nickname": "A"}, headers=ALICE))
    assert only_nickname["capabilities"] == ["coding"]


@pytest.mark.parametrize(
    "body", [{"nickname": ""}, {"capabilities": "coding"}, {"capabilities": [""]}, {"trust_score": 1}]
)
async def test_a_bad_update_is_a_400(platform: TestClient[Any, Any], body: dict[str, Any]) -> None:
    await v1_error(await platform.put("/v1/agents/alice", json=body, headers=ALICE), 400)


async def test_openapi_documents_every_v1_route_in_the_envelope(platform: TestClient[Any, Any]) -> None:
    document = await (await platform.get("/openapi.json")).json()
    paths = {path: ops for path, ops in document["paths"].items() if path.startswith("/v1/")}
    for path in ("/v1/status", "/v1/auth/register", "/v1/auth/login", "/v1/agents", "/v1/wallet"):
        assert path in paths
    schemas = document["components"]["schemas"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            success = next(code for code in operation["responses"] if code.startswith("2"))
            ref = operation["responses"][success]["content"]["application/json"]["schema"]["$ref"]
            assert set(schemas[ref.rsplit("/", 1)[1]]["properties"]) == {
                "code",
                "message",
                "data",
                "timestamp",
            }
            error = operation["responses"]["429"]["content"]["application/json"]["schema"]["$ref"]
            assert error.endswith("/V1Error"), (method, path)

"""``uuagent_search`` over MCP, on both engines: public capabilities, agents and open tasks found by
Chinese and English keywords, private capabilities and system prompts never; an unknown tool is an
MCP error and the session goes on."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from mcp.shared.exceptions import MCPError

from tests.api.conftest import ClientMaker, v1_ok
from tests.api.test_mcp import TRANSPORTS, Transport, base_of, call, connect, refused

pytestmark = pytest.mark.both_engines

ALICE = {"Authorization": "Bearer tok-a"}
BOB = {"Authorization": "Bearer tok-b"}
SEED_HEADERS = {"X-Api-Key": "tok-b", "X-Platform-User-Id": "bob"}


async def capability(client: TestClient[Any, Any], **spec: Any) -> None:
    response = await client.post("/api/v1/capabilities", json=spec, headers=ALICE)
    assert response.status == 201, await response.text()


@pytest.fixture
async def market(make_platform: ClientMaker) -> TestClient[Any, Any]:
    """alice sells two public capabilities and keeps a private one; bob and alice publish tasks."""
    client = await make_platform(api_keys="alice:tok-a,bob:tok-b")
    await capability(
        client,
        id="sales_insights",
        name="销售数据分析",
        description="提供数据分析服务:销售趋势、同比环比",
        category="analytics",
        visibility="public",
        price=12.5,
        system_prompt="secret-recipe: 先看库存",
    )
    await capability(
        client,
        id="pdf_translate",
        name="PDF translation",
        description="Translates PDF documents, 100% layout kept",
        category="language",
        visibility="public",
        price=3,
    )
    await capability(client, id="private_analysis", name="私有数据分析", description="数据分析,仅自用")
    await v1_ok(await client.put("/v1/agents/alice", json={"capabilities": ["data_analysis"]}, headers=ALICE))
    for headers, title, capabilities in (
        (BOB, "季度数据分析报告", ["data_analysis"]),
        (ALICE, "Translate a contract", ["translation"]),
    ):
        task = {"title": title, "description": title, "required_capabilities": capabilities, "budget": 10}
        await v1_ok(await client.post("/v1/tasks", json=task, headers=headers), 201)
    return client


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_search_in_chinese(market: TestClient[Any, Any], transport: Transport) -> None:
    async with connect(base_of(market), transport, SEED_HEADERS) as session:
        found = await call(session, "uuagent_search", query="数据分析", page_size=5)

    assert found["query"] == "数据分析"
    assert [c["id"] for c in found["capabilities"]] == ["sales_insights"]  # not alice's private one
    sales = found["capabilities"][0]
    assert (sales["owner"], sales["price"], sales["category"]) == ("alice", 12.5, "analytics")
    assert "system_prompt" not in sales
    assert [task["title"] for task in found["tasks"]] == ["季度数据分析报告"]
    assert found["tasks"][0]["required_capabilities"] == ["data_analysis"]
    assert found["tasks"][0]["budget"] == 10 and found["tasks"][0]["publisher"] == "bob"
    assert [agent["id"] for agent in found["agents"]] == []  # no nickname or capability says it


async def test_search_in_english_by_every_kind(market: TestClient[Any, Any]) -> None:
    async with connect(base_of(market), "streamable", SEED_HEADERS) as session:
        pdf = await call(session, "uuagent_search", query="pdf TRANSLATION")
        assert [c["id"] for c in pdf["capabilities"]] == ["pdf_translate"]
        assert pdf["agents"] == [] and pdf["tasks"] == []

        by_capability = await call(session, "uuagent_search", query="data_analysis")
        assert [agent["id"] for agent in by_capability["agents"]] == ["alice"]
        assert by_capability["agents"][0]["capabilities"] == ["data_analysis"]
        assert [task["title"] for task in by_capability["tasks"]] == ["季度数据分析报告"]

        # A system prompt is its owner's: no word of it finds the capability.
        assert (await call(session, "uuagent_search", query="secret-recipe"))["capabilities"] == []
        # LIKE's wildcards are plain characters.
        for query in ("100%", "%"):
            found = await call(session, "uuagent_search", query=query)
            assert [c["id"] for c in found["capabilities"]] == ["pdf_translate"]
        assert [c["id"] for c in (await call(session, "uuagent_search", query="s_i"))["capabilities"]] == [
            "sales_insights"
        ]

        everything = await call(session, "uuagent_search", query="", page_size=100)
        ids = [c["id"] for c in everything["capabilities"]]
        assert {"sales_insights", "pdf_translate"} <= set(ids) and "private_analysis" not in ids
        assert {"alice", "bob"} <= {agent["id"] for agent in everything["agents"]}
        assert [task["title"] for task in everything["tasks"]] == ["Translate a contract", "季度数据分析报告"]

        one = await call(session, "uuagent_search", query="", page_size=1)
        assert (len(one["capabilities"]), len(one["agents"]), len(one["tasks"])) == (1, 1, 1)
        analytics = await call(session, "uuagent_search", query="", category="analytics")
        assert [c["id"] for c in analytics["capabilities"]] == ["sales_insights"]


async def test_a_task_no_longer_open_is_not_found(market: TestClient[Any, Any]) -> None:
    tasks = await v1_ok(await market.get("/v1/tasks", params={"status": "open"}, headers=ALICE))
    task_id = next(task["task_id"] for task in tasks["items"] if task["publisher"] == "bob")
    await v1_ok(await market.put(f"/v1/tasks/{task_id}/accept", headers=ALICE))
    async with connect(base_of(market), "streamable", SEED_HEADERS) as session:
        assert (await call(session, "uuagent_search", query="数据分析"))["tasks"] == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_unknown_tool_is_an_mcp_error_and_the_session_goes_on(
    market: TestClient[Any, Any], transport: Transport
) -> None:
    async with connect(base_of(market), transport, SEED_HEADERS) as session:
        with pytest.raises(MCPError, match="unknown tool 'uuagent_find'"):
            await session.call_tool("uuagent_find", {"query": "数据分析"})
        assert "page_size" in await refused(session, "uuagent_search", query="x", page_size=0)
        found = await call(session, "uuagent_search", query="数据分析")
        assert [c["id"] for c in found["capabilities"]] == ["sales_insights"]
        assert "uuagent_search" in {tool.name for tool in (await session.list_tools()).tools}

"""Every integer a caller sends is bounded at the edge: out of range is a 400 (or A2A/MCP's invalid
params) with a reason, before any response starts; never an overflow in the store."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE
from tests.api.test_mcp import base_of, connect, refused
from tests.api.test_tasks import follow, start
from tests.fakes import Reply, ScriptedModelServer

pytestmark = pytest.mark.docker

Client = TestClient[Any, Any]

PAST_SQLITE = str(2**63)  # 9223372036854775808: one past SQLite's INTEGER
HUGE = "9" * 5000  # past the digits int() parses at all


async def bad_request(response: Any) -> str:
    """The reason of a 400 ``{"success": false, "error"}`` answered in one JSON body."""
    assert response.status == 400, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["success"] is False
    error: str = body["error"]
    return error


@pytest.fixture
async def task_id(api: Client, model_server: ScriptedModelServer) -> str:
    model_server.add(Reply("done"))
    accepted = await start(api)
    await follow(api, accepted["task_id"])
    task: str = accepted["task_id"]
    return task


@pytest.mark.parametrize("value", [PAST_SQLITE, HUGE])
async def test_poll_and_stream_refuse_an_offset_past_the_bound(api: Client, task_id: str, value: str) -> None:
    for path in (f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}/events"):
        reason = await bad_request(await api.get(f"{path}?from={value}", headers=ALICE))
        assert "from" in reason


@pytest.mark.parametrize("value", [PAST_SQLITE, str(2**53), "-2", HUGE, "x"])
async def test_last_event_id_is_bounded_like_from(api: Client, task_id: str, value: str) -> None:
    response = await api.get(f"/api/v1/tasks/{task_id}/events", headers={**ALICE, "Last-Event-ID": value})
    assert "Last-Event-ID" in await bad_request(response)


async def test_the_largest_offset_is_accepted(api: Client, task_id: str) -> None:
    largest = 2**53 - 1
    poll = await api.get(f"/api/v1/tasks/{task_id}?from={largest}", headers=ALICE)
    assert poll.status == 200
    assert (await poll.json())["data"]["next_offset"] == largest
    stream = await api.get(
        f"/api/v1/tasks/{task_id}/events", headers={**ALICE, "Last-Event-ID": str(largest - 1)}
    )
    assert stream.status == 200 and await stream.text() == ""  # nothing past it, and the task has ended


async def a2a(api: Client, method: str, params: dict[str, Any], headers: dict[str, str] = ALICE) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = await api.post("/a2a", json=body, headers=headers)
    assert response.content_type == "application/json", await response.text()  # no stream started
    return await response.json()


async def test_a2a_resubscribe_refuses_a_last_event_id_past_the_bound(api: Client, task_id: str) -> None:
    for value in (PAST_SQLITE, HUGE):
        answer = await a2a(api, "SubscribeToTask", {"id": task_id}, {**ALICE, "Last-Event-ID": value})
        assert answer["error"]["code"] == -32602
        assert "Last-Event-ID" in answer["error"]["message"]


@pytest.mark.parametrize("token", [PAST_SQLITE, HUGE, "²"])
async def test_a2a_list_refuses_a_page_token_it_did_not_issue(api: Client, token: str) -> None:
    answer = await a2a(api, "ListTasks", {"pageToken": token})
    assert answer["error"]["code"] == -32602
    assert "pageToken" in answer["error"]["message"]


async def test_a2a_history_length_is_bounded(api: Client, task_id: str) -> None:
    answer = await a2a(api, "GetTask", {"id": task_id, "historyLength": 2**63})
    assert answer["error"]["code"] == -32602
    assert "historyLength" in answer["error"]["message"]


async def test_capability_pages_are_bounded(api: Client) -> None:
    response = await api.get(f"/api/v1/capabilities?page={PAST_SQLITE}", headers=ALICE)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == 400 and "page" in body["message"]


async def test_mcp_integer_arguments_are_bounded(api: Client) -> None:
    async with connect(base_of(api), "streamable") as session:
        reason = await refused(session, "read_file", path="f.txt", offset=2**63)
        assert "offset" in reason
        reason = await refused(session, "search_capabilities", page=2**63)
        assert "page" in reason

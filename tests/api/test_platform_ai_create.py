"""``POST /api/v1/tasks/ai-create`` with the scripted model, on both engines: the reply streamed, the
draft validated as ``POST /v1/tasks`` validates, published with its escrow, and every failure an
error line at the end of a 200 stream, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ClientMaker, v1_ok
from tests.fakes import Error, Reply, ScriptedModelServer

pytestmark = pytest.mark.both_engines

ALICE = {"Authorization": "Bearer tok-a"}
SEED_HEADERS = {"X-Api-Key": "tok-a", "X-Platform-User-Id": "alice"}
PATH = "/api/v1/tasks/ai-create"

DRAFT = {
    "title": "销售数据分析报告",
    "description": "分析上季度的销售数据,找出增长最快的三个产品线,写成报告",
    "required_capabilities": ["data_analysis", "report_writing"],
    "budget": 120.5,
    "deadline": "2099-01-31T18:00:00Z",
}
# Text around the object, as chatty models write it: it must be tolerated.
REPLY = "好的,这是任务草稿:\n```json\n" + json.dumps(DRAFT, ensure_ascii=False) + "\n```\n祝顺利 {完成}!"


@pytest.fixture
async def market(make_platform: ClientMaker) -> TestClient[Any, Any]:
    return await make_platform(api_keys="alice:tok-a,bob:tok-b")


async def lines(response: Any) -> list[dict[str, Any]]:
    """The ``data:`` lines of a 200 event stream, parsed."""
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = await response.text()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_a_valid_draft_is_streamed_then_validated(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply(REPLY))
    body = {"description": "帮我分析一下上季度的销售数据,预算120.5积分,月底前交"}
    got = await lines(await market.post(PATH, json=body, headers=SEED_HEADERS))

    texts = [line for line in got if line["type"] == "text"]
    assert len(texts) > 1  # streamed in pieces, as the model sent them
    assert "".join(line["text"] for line in texts) == REPLY
    assert [line["type"] for line in got[len(texts) :]] == ["draft", "end"]
    assert got[-2]["draft"] == DRAFT | {"assignee": None}
    assert got[-1] == {"type": "end", "task_id": None}

    # The description is the user message; the system prompt asks for one JSON object.
    messages = model_server.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == body["description"]
    assert "JSON object" in messages[0]["content"]
    assert "tools" not in model_server.requests[0]
    # Not published: nothing moved.
    wallet = await v1_ok(await market.get("/v1/wallet", headers=ALICE))
    assert (wallet["balance"], wallet["frozen"]) == (1000, 0)


async def test_publish_holds_the_budget_and_ends_with_the_task_id(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply(REPLY))
    got = await lines(
        await market.post(PATH, json={"description": "分析销售数据", "publish": True}, headers=ALICE)
    )

    assert [line["type"] for line in got[-3:]] == ["draft", "published", "end"]
    task_id = got[-1]["task_id"]
    assert task_id is not None and got[-2]["task_id"] == task_id
    assert got[-2]["task"]["status"] == "open" and got[-2]["task"]["budget"] == 120.5

    task = await v1_ok(await market.get(f"/v1/tasks/{task_id}", headers={"Authorization": "Bearer tok-b"}))
    assert (task["publisher"], task["title"], task["budget"]) == ("alice", DRAFT["title"], 120.5)
    assert task["required_capabilities"] == DRAFT["required_capabilities"]
    assert task["deadline"] == "2099-01-31T18:00:00+00:00"
    wallet = await v1_ok(await market.get("/v1/wallet", headers=ALICE))
    assert (wallet["balance"], wallet["frozen"]) == (879.5, 120.5)


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ("抱歉,我无法理解这个请求。", "no JSON object"),
        (json.dumps(DRAFT | {"budget": -5}), "budget"),  # POST /v1/tasks refuses it too
        (json.dumps(DRAFT | {"budget": 1.005}), "budget"),
        (json.dumps({k: v for k, v in DRAFT.items() if k != "title"}), "title"),
        (json.dumps(DRAFT | {"currency": "CNY"}), "currency"),  # a field the task model does not know
    ],
)
async def test_an_invalid_draft_ends_with_an_error_line(
    market: TestClient[Any, Any], model_server: ScriptedModelServer, reply: str, says: str
) -> None:
    model_server.add(Reply(reply))
    got = await lines(await market.post(PATH, json={"description": "x", "publish": True}, headers=ALICE))

    assert "".join(line["text"] for line in got if line["type"] == "text") == reply
    last = got[-1]
    assert last["type"] == "error" and last["code"] == 422 and says in last["message"], last
    assert not [line for line in got if line["type"] in ("draft", "published", "end")]
    assert (await v1_ok(await market.get("/v1/tasks", headers=ALICE)))["total"] == 0


async def test_a_publish_refused_and_a_model_failure_are_error_lines(
    market: TestClient[Any, Any], model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply(json.dumps(DRAFT | {"budget": 5000})))  # over alice's 1000 credits
    got = await lines(await market.post(PATH, json={"description": "x", "publish": True}, headers=ALICE))
    assert [line["type"] for line in got[-2:]] == ["draft", "error"]
    assert got[-1]["code"] == 409

    model_server.extend([Error(400, message="context length exceeded")])
    got = await lines(await market.post(PATH, json={"description": "x"}, headers=ALICE))
    assert got == [{"type": "error", "code": 502, "message": got[0]["message"]}]
    assert "400" in got[0]["message"]
    wallet = await v1_ok(await market.get("/v1/wallet", headers=ALICE))
    assert (wallet["balance"], wallet["frozen"]) == (1000, 0)


async def test_a_bad_request_is_refused_in_the_capability_envelope(market: TestClient[Any, Any]) -> None:
    for body, status, headers in (
        ({"description": ""}, 400, ALICE),
        ({"description": "x", "extra": 1}, 400, ALICE),
        ({"description": "x"}, 401, {}),
    ):
        response = await market.post(PATH, json=body, headers=headers)
        assert response.status == status
        envelope = await response.json()
        assert set(envelope) == {"code", "message", "data", "timestamp"}
        assert envelope["code"] == status and envelope["data"] is None
        assert isinstance(envelope["timestamp"], int)

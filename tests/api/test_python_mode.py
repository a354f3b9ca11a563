"""A workspace's python_mode: one interpreter per conversation (stateful) or a process per call (fresh)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE, BOB
from tests.api.test_tasks import follow, get, post, start
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

Client = TestClient[Any, Any]


def _python_results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "tool_result" and e["data"]["name"] == "execute_python"]


async def _two_messages(api: Client, model_server: ScriptedModelServer, ws: str) -> list[dict[str, Any]]:
    """One conversation: the first message sets x, the second prints whether it is still there."""
    model_server.extend(
        [
            ToolCalls([Call("execute_python", {"code": "x = 41"})]),
            Reply("set"),
            ToolCalls([Call("execute_python", {"code": "print(globals().get('x', 'unset'))"})]),
            Reply("read"),
        ]
    )
    first = await start(api, ws=ws)
    await follow(api, first["task_id"])
    second = await post(
        api,
        f"/api/v1/workspaces/{ws}/messages",
        {"conversation_id": first["conversation_id"], "message": "again"},
        status=202,
    )
    status, events = await follow(api, second["task_id"])
    assert status == "completed"
    return _python_results(events)


async def test_a_conversations_messages_share_python_state_in_a_stateful_workspace(
    api: Client, model_server: ScriptedModelServer
) -> None:
    created = await post(api, "/api/v1/workspaces", {"workspace_id": "ws1"})
    assert created["python_mode"] == "stateful"  # the default

    (result,) = await _two_messages(api, model_server, "ws1")

    assert result["stdout"] == "41\n" and result["state_lost"] is False
    # Another conversation in the same workspace (and sandbox) has an interpreter of its own.
    model_server.extend(
        [ToolCalls([Call("execute_python", {"code": "print(globals().get('x', 'unset'))"})]), Reply("other")]
    )
    other = await start(api, ws="ws1")
    _, events = await follow(api, other["task_id"])
    assert _python_results(events)[0]["stdout"] == "unset\n"


async def test_a_fresh_workspace_runs_each_call_in_a_new_process(
    api: Client, model_server: ScriptedModelServer
) -> None:
    created = await post(api, "/api/v1/workspaces", {"workspace_id": "ws2", "python_mode": "fresh"})
    assert created["python_mode"] == "fresh"

    (result,) = await _two_messages(api, model_server, "ws2")

    assert result["stdout"] == "unset\n"


async def test_python_mode_round_trips_and_is_kept_when_omitted(api: Client) -> None:
    await post(api, "/api/v1/workspaces", {"workspace_id": "ws3"})
    updated = await post(api, "/api/v1/workspaces", {"workspace_id": "ws3", "python_mode": "fresh"})
    assert updated["python_mode"] == "fresh"
    again = await post(api, "/api/v1/workspaces", {"workspace_id": "ws3"})  # ensure, no change
    assert again["python_mode"] == "fresh"

    listed = {w["workspace_id"]: w for w in (await get(api, "/api/v1/workspaces"))["workspaces"]}
    assert listed["ws3"]["python_mode"] == "fresh"
    assert listed["default"]["python_mode"] == "stateful"
    bobs = (await get(api, "/api/v1/workspaces", headers=BOB))["workspaces"]
    assert [w["workspace_id"] for w in bobs] == ["default"]  # set for alice's workspace only

    back = await post(api, "/api/v1/workspaces", {"workspace_id": "ws3", "python_mode": "stateful"}, ALICE)
    assert back["python_mode"] == "stateful"


@pytest.mark.parametrize("mode", ["notebook", 1, None])
async def test_an_unknown_python_mode_is_refused(api: Client, mode: Any) -> None:
    response = await api.post(
        "/api/v1/workspaces", json={"workspace_id": "ws4", "python_mode": mode}, headers=ALICE
    )
    if mode is None:  # null is the same as leaving it out
        assert response.status == 200
        return
    assert response.status == 400
    assert "python_mode" in (await response.json())["error"]


async def test_a_chat_runs_python_calls_share_state_within_the_run(
    api: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_python", {"code": "import math\nx = math.prod([6, 7])"})]),
            ToolCalls([Call("execute_python", {"code": "print(x)"})]),
            Reply("42"),
        ]
    )
    body = await post(api, "/chat", {"message": "compute", "max_iterations": 5})

    results = [log["result"] for log in body["logs"] if "result" in log]
    assert [r["stdout"] for r in results] == ["", "42\n"]


async def test_a_wedged_interpreter_is_restarted_and_the_model_is_told_the_state_was_lost(
    api: Client, model_server: ScriptedModelServer
) -> None:
    wedge = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    model_server.extend(
        [
            ToolCalls([Call("execute_python", {"code": "x = 1"})]),
            ToolCalls([Call("execute_python", {"code": wedge, "timeout": 1})]),
            ToolCalls([Call("execute_python", {"code": "print(globals().get('x', 'unset'))"})]),
            Reply("restarted"),
        ]
    )
    accepted = await start(api)
    status, events = await follow(api, accepted["task_id"])

    assert status == "completed"
    set_x, wedged, after = _python_results(events)
    assert wedged["timed_out"] is True and wedged["state_lost"] is True
    assert (set_x["state_lost"], after["state_lost"]) == (False, False)
    assert after["stdout"] == "unset\n"
    told = model_server.requests[2]["messages"][-1]
    assert told["role"] == "tool" and "earlier calls are lost" in told["content"]

"""``agent-worker run`` and ``agent-worker tasks`` as a user runs them: a process against the app."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALICE
from tests.client.conftest import base_url
from tests.fakes import Call, Error, Hang, Reply, ScriptedModelServer, ToolCalls

pytestmark = pytest.mark.docker

Served = TestClient[Any, Any]
TIMEOUT = 120


async def start_cli(served: Served, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "AGENT_SERVER_URL": base_url(served), "AGENT_API_KEY": "tok-a", "COLUMNS": "200"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def cli(served: Served, *args: str) -> tuple[int, str, str]:
    process = await start_cli(served, *args)
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_run_prints_the_answer_and_exits_0(served: Served, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("The answer is 625."))

    code, out, err = await cli(served, "run", "What is 25 * 25?")

    assert code == 0, err
    assert "The answer is 625." in out
    assert "completed · 1 iteration · 15 tokens (10 prompt + 5 completion)" in out


async def test_run_shows_each_tool_call_with_its_output(
    served: Served, model_server: ScriptedModelServer
) -> None:
    model_server.add(ToolCalls([Call("execute_bash", {"command": "echo from-the-sandbox"})]))
    model_server.add(Reply("It printed from-the-sandbox."))

    code, out, err = await cli(served, "run", "Echo something")

    assert code == 0, err
    assert "✓ execute_bash echo from-the-sandbox (exit 0," in out
    assert "  from-the-sandbox" in out
    assert "completed · 2 iterations" in out


async def test_a_failing_task_exits_1_and_is_listed(
    served: Served, model_server: ScriptedModelServer
) -> None:
    model_server.add(Error(status=400, message="the model refused"))

    code, out, _ = await cli(served, "run", "fail please")
    listed_code, listed, _ = await cli(served, "tasks", "list", "--json")

    assert code == 1
    assert "failed" in out and "the model refused" in out
    tasks = json.loads(listed)["tasks"]
    assert listed_code == 0 and [t["status"] for t in tasks] == ["failed"]
    table_code, table, _ = await cli(served, "tasks", "list")
    assert table_code == 0 and tasks[0]["task_id"] in table and "failed" in table


async def test_json_prints_the_accepted_task_then_every_event(
    served: Served, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("json answer"))

    code, out, err = await cli(served, "run", "as json", "--json")

    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    accepted, events = lines[0], lines[1:]
    assert accepted["status"] in ("running", "pending") and accepted["task_id"]
    assert [e["offset"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "run_completed" and events[-1]["data"]["response"] == "json answer"
    show_code, shown, _ = await cli(served, "tasks", "show", accepted["task_id"], "--json")
    assert show_code == 0 and json.loads(shown)["status"] == "completed"
    follow_code, followed, _ = await cli(
        served, "tasks", "follow", accepted["task_id"], "--from", "1", "--json"
    )
    assert follow_code == 0 and [json.loads(line) for line in followed.splitlines()] == events[1:]


async def test_ctrl_c_cancels_the_task_on_the_server(
    served: Served, model_server: ScriptedModelServer
) -> None:
    model_server.add(Hang(120))
    process = await start_cli(served, "run", "take forever")
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)  # "task <id> running": it started
    task_id = first.decode().split()[1]

    process.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)

    assert process.returncode == 130
    assert f"task {task_id} canceled" in out.decode()
    poll = await served.get(f"/api/v1/tasks/{task_id}", headers=ALICE)
    assert (await poll.json())["data"]["status"] == "canceled"


async def test_once_runs_chat_and_cancel_and_version(
    served: Served, model_server: ScriptedModelServer
) -> None:
    model_server.add(Reply("chat says hi"))

    code, out, _ = await cli(served, "run", "hi", "--once")
    version_code, version, _ = await cli(served, "--version")
    missing_code, _, missing = await cli(served, "tasks", "cancel", "no-such-task")

    assert code == 0 and "chat says hi" in out
    assert version_code == 0 and version.startswith("agent-worker ")
    assert missing_code == 4 and "404" in missing

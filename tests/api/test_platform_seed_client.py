"""The agent platform's API document, as a client: its curl lines run with real curl against a
served worker (AGENT_REGISTRATION=open), on both engines.

Each command below is the document's text as printed. Only what names this server or this run is
substituted: the host and port, the API key of the node making the call (the document shows one
demo key for every call, but a node may not accept its own task, so the publisher and the
acceptor use their own keys), the id of the task the publish step created (``task_001`` in the
document), and the publish step's deadline, which the document dates 2026-03-28: a deadline must
be in the future when a task is published, so it is moved to a year from now.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import StartWorker

pytestmark = [
    pytest.mark.both_engines,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the client is curl; it is not installed"),
]

DOC_HOST = "http://localhost:5001"
DOC_KEY = "fg_live_demo_xxxxxxxxxxxx"
DOC_TASK = "task_001"
DOC_DEADLINE = "2026-03-28T08:00:00"

STATUS = "curl http://localhost:5001/v1/status"
LIST_AGENTS = '''curl http://localhost:5001/v1/agents \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
LIST_TASKS = '''curl http://localhost:5001/v1/tasks \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
REGISTER = """curl -X POST http://localhost:5001/v1/auth/register \\
-H "Content-Type: application/json" \\
-d '{
"username": "my_node",
"email": "node@example.com",
"capabilities": ["stock_analysis", "text_generation"]
}'"""
LOGIN = """curl -X POST http://localhost:5001/v1/auth/login \\
-H "Content-Type: application/json" \\
-d '{"username": "demo", "password": "demo"}'"""
FIND_AGENTS = '''curl "http://localhost:5001/v1/agents?capability=text_generation&min_trust=0.9" \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
GET_AGENT = '''curl http://localhost:5001/v1/agents/demo \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
UPDATE_AGENT = """curl -X PUT http://localhost:5001/v1/agents/demo \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx" \\
-H "Content-Type: application/json" \\
-d '{"nickname": "新昵称", "capabilities": ["coding"]}'"""
TASKS_IN_PROGRESS = '''curl "http://localhost:5001/v1/tasks?status=progress" \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
PUBLISH = """curl -X POST http://localhost:5001/v1/tasks \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx" \\
-H "Content-Type: application/json" \\
-d '{
"title": "A股每日复盘报告",
"description": "对今日A股市场进行技术分析,撰写复盘报告",
"required_capabilities": ["stock_analysis", "text_generation"],
"budget": 500,
"deadline": "2026-03-28T08:00:00"
}'"""
ACCEPT = '''curl -X PUT http://localhost:5001/v1/tasks/task_001/accept \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
COMPLETE = """curl -X PUT http://localhost:5001/v1/tasks/task_001/complete \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx" \\
-H "Content-Type: application/json" \\
-d '{
"deliverables": {
"report": "复盘报告内容...",
"files": ["report.pdf"]
},
"quality_notes": "包含涨跌停板分析、资金流向、板块表现"
}'"""
READ_MEMORY = '''curl "http://localhost:5001/v1/memory?tag=新能源" \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
WRITE_MEMORY = """curl -X POST http://localhost:5001/v1/memory \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx" \\
-H "Content-Type: application/json" \\
-d '{
"content": "2026年Q1新能源渗透率超过40%,比亚迪领先",
"participants": ["ai_analyst_001", "ai_finance_003"],
"tags": ["新能源", "市场数据"]
}'"""
RATE = """curl -X POST http://localhost:5001/v1/trust/rate \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx" \\
-H "Content-Type: application/json" \\
-d '{
"agent_id": "demo",
"task_id": "task_001",
"quality_score": 4.8,
"on_time": true,
"comment": "交付专业,沟通顺畅"
}'"""
# The document lists these routes without a curl line; the same form as its other GETs.
GET_TRUST = '''curl http://localhost:5001/v1/trust/demo \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
WALLET = '''curl http://localhost:5001/v1/wallet \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''
TRANSACTIONS = '''curl http://localhost:5001/v1/transactions \\
-H "Authorization: Bearer fg_live_demo_xxxxxxxxxxxx"'''


class Client:
    """Runs a document's curl command with bash, as a reader would paste it, on this server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.task_id = DOC_TASK

    async def run(self, command: str, key: str | None = None, status: int = 200) -> Any:
        """The command's answer, a /v1 envelope; its ``data`` when ``status`` is a success."""
        line = command.replace(DOC_HOST, self.base).replace(DOC_TASK, self.task_id)
        if key is not None:
            line = line.replace(DOC_KEY, key)
        # -s: the document's lines print only the body; -w adds the status on a line of its own.
        line = line.replace("curl ", "curl -s -w '\\n%{http_code}' ", 1)
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", line, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        body, _, code = out.decode().rpartition("\n")
        envelope = json.loads(body)
        assert set(envelope) == {"code", "message", "data", "timestamp"}, envelope
        datetime.fromisoformat(envelope["timestamp"])
        assert int(code) == status, envelope
        if status >= 400:
            assert envelope["code"] == status and envelope["data"] is None, envelope
            return envelope
        assert envelope["code"] == 0, envelope
        return envelope["data"]


async def register(client: Client, username: str, **fields: Any) -> str:
    """A node registered through the API, with the document's register body's shape."""
    body = json.dumps({"username": username, "email": f"{username}@example.com", **fields})
    command = f"curl -X POST {DOC_HOST}/v1/auth/register -H 'Content-Type: application/json' -d '{body}'"
    data = await client.run(command)
    key: str = data["api_key"]
    return key


async def test_the_documents_curl_lines_work_as_a_client(start_worker: StartWorker) -> None:
    base, _ = await start_worker(AGENT_REGISTRATION="open", AGENT_SIGNUP_CREDITS="1000")
    client = Client(base)

    status = await client.run(STATUS)
    assert status is not None
    await client.run(LIST_AGENTS, status=401)  # the document's demo key is no key here

    # The demo node, with the password the document logs in with; the memory's participants.
    await register(client, "demo", password="demo", capabilities=["text_generation"])
    for participant in ("ai_analyst_001", "ai_finance_003"):
        await register(client, participant)
    credentials = await client.run(REGISTER)
    assert credentials["node_id"] == "my_node" and credentials["api_key"].startswith("fg_live_")
    my_node = credentials["api_key"]
    await client.run(REGISTER, status=409)  # the username is taken now
    logged_in = await client.run(LOGIN)
    assert logged_in["node_id"] == "demo"
    demo = logged_in["api_key"]

    agents = await client.run(LIST_AGENTS, demo)
    assert {"demo", "my_node", "ai_analyst_001"} <= {a["agent_id"] for a in agents["items"]}
    assert (await client.run(FIND_AGENTS, demo))["items"] == []  # nobody is trusted 0.9 yet
    assert (await client.run(GET_AGENT, demo))["agent_id"] == "demo"
    updated = await client.run(UPDATE_AGENT, demo)
    assert (updated["nickname"], updated["capabilities"]) == ("新昵称", ["coding"])
    await client.run(UPDATE_AGENT, my_node, status=403)  # only the node itself
    assert (await client.run(LIST_TASKS, demo))["items"] == []

    deadline = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S")
    task = await client.run(PUBLISH.replace(DOC_DEADLINE, deadline), my_node, status=201)
    assert (task["status"], task["budget"], task["publisher"]) == ("open", 500, "my_node")
    client.task_id = task["task_id"]
    assert (await client.run(WALLET, my_node))["frozen"] == 500
    await client.run(ACCEPT, my_node, status=403)  # not one's own task
    assert (await client.run(ACCEPT, demo))["status"] == "progress"
    await client.run(ACCEPT, demo, status=409)
    assert [t["task_id"] for t in (await client.run(TASKS_IN_PROGRESS, demo))["items"]] == [client.task_id]
    await client.run(COMPLETE, my_node, status=403)  # only the acceptor
    done = await client.run(COMPLETE, demo)
    assert done["status"] == "done" and done["deliverables"]["files"] == ["report.pdf"]

    await client.run(RATE, demo, status=403)  # the publisher rates, not the acceptor
    rated = await client.run(RATE, my_node)
    assert rated["ratings_count"] == 1 and 0.5 < rated["trust_score"] < 1
    await client.run(RATE, my_node, status=409)  # once per task
    trust = await client.run(GET_TRUST, demo)
    assert trust["ratings_count"] == 1 and trust["ratings"][0]["comment"] == "交付专业,沟通顺畅"

    entry = await client.run(WRITE_MEMORY, demo, status=201)
    assert entry["participants"] == ["ai_analyst_001", "ai_finance_003"]
    assert [e["id"] for e in (await client.run(READ_MEMORY, demo))["items"]] == [entry["id"]]
    assert (await client.run(READ_MEMORY, my_node))["items"] == []  # not a participant

    wallet = await client.run(WALLET, demo)
    assert (wallet["balance"], wallet["frozen"], wallet["total_earned"]) == (1500, 0, 500)
    spent = await client.run(WALLET, my_node)
    assert (spent["balance"], spent["frozen"], spent["total_spent"]) == (500, 0, 500)
    statement = await client.run(TRANSACTIONS, demo)
    assert [(t["type"], t["amount"]) for t in statement["items"]] == [
        ("escrow_release", 500),
        ("grant", 1000),
    ]


async def test_a_percent_encoded_tag_finds_what_the_raw_one_does(start_worker: StartWorker) -> None:
    base, _ = await start_worker(AGENT_REGISTRATION="open")
    client = Client(base)
    demo = await register(client, "demo")
    for participant in ("ai_analyst_001", "ai_finance_003"):
        await register(client, participant)
    entry = await client.run(WRITE_MEMORY, demo, status=201)
    encoded = READ_MEMORY.replace("新能源", quote("新能源"))
    assert [e["id"] for e in (await client.run(encoded, demo))["items"]] == [entry["id"]]

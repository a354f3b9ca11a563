"""A served worker killed with SIGKILL in the middle of marketplace work, then restarted: no
half-moved money (every task's escrow matches its status, the ledger sums to zero), and a house
agent's task whose run was cut off is failed and refunded at start-up. Both engines."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runtime.store import Store
from tests.api.conftest import StartWorker
from tests.conftest import assert_ledger_balanced
from tests.fakes import Hang, ScriptedModelServer

pytestmark = pytest.mark.both_engines

KEYS = "alice:tok-a,bob:tok-b"
ALICE = {"Authorization": "Bearer tok-a"}
BOB = {"Authorization": "Bearer tok-b"}
TASK = {"title": "t", "description": "d", "required_capabilities": ["x"], "budget": 1}
HOLD_STATE = {
    "open": "open",
    "progress": "open",
    "done": "released",
    "canceled": "refunded",
    "failed": "refunded",
}


async def call(
    session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: Any = None
) -> Any:
    async with session.request(method, url, json=body, headers=headers) as response:
        assert response.status in (200, 201), await response.text()
        return (await response.json())["data"]


async def lifecycles(base: str, done: list[int]) -> None:
    """publish → accept → complete, again and again, until the worker is gone."""
    async with aiohttp.ClientSession() as session:
        with contextlib.suppress(aiohttp.ClientError):
            while True:
                task = await call(session, "POST", f"{base}/v1/tasks", ALICE, TASK)
                url = f"{base}/v1/tasks/{task['task_id']}"
                await call(session, "PUT", f"{url}/accept", BOB)
                await call(session, "PUT", f"{url}/complete", BOB, {"deliverables": {"report": "r"}})
                done.append(1)


async def check_money(target: str | Path) -> None:
    """Every task's hold is in the state its status says, and the ledger balances."""
    async with Store.open(target) as store:
        await assert_ledger_balanced(store)
        tasks, total = await store.platform_tasks.list_tasks(None, None, 0, 100_000)
        assert total == len(tasks) > 0
        for task in tasks:
            assert await store.ledger.hold_state(task.id) == HOLD_STATE[task.status], task
        alice, bob = await store.ledger.wallet("alice"), await store.ledger.wallet("bob")
        unsettled = sum(t.budget for t in tasks if t.status in ("open", "progress"))
        paid = sum(t.budget for t in tasks if t.status == "done")
        assert alice.frozen == unsettled
        assert (alice.total_spent, bob.total_earned) == (paid, paid)
        assert alice.balance + alice.frozen + bob.balance + bob.frozen == 2 * 100_000


def store_target(tmp_path: Path, database_url: str | None) -> str | Path:
    return database_url or tmp_path / "data" / "agent-worker.sqlite3"


async def test_sigkill_mid_lifecycles_leaves_no_half_moved_money(
    start_worker: StartWorker, tmp_path: Path, database_url: str | None
) -> None:
    base, process = await start_worker(AGENT_API_KEYS=KEYS)
    done: list[int] = []
    clients = [asyncio.create_task(lifecycles(base, done)) for _ in range(4)]
    while len(done) < 20:
        assert not any(c.done() for c in clients), [c.exception() for c in clients if c.done()]
        await asyncio.sleep(0.01)
    process.kill()  # SIGKILL while four clients have requests in flight
    await process.wait()
    await asyncio.gather(*clients)
    base, _ = await start_worker(AGENT_API_KEYS=KEYS)
    await check_money(store_target(tmp_path, database_url))
    # The restarted worker goes on from there.
    async with aiohttp.ClientSession() as session:
        task = await call(session, "POST", f"{base}/v1/tasks", ALICE, TASK)
        await call(session, "PUT", f"{base}/v1/tasks/{task['task_id']}/accept", BOB)
    await check_money(store_target(tmp_path, database_url))


async def test_a_house_task_cut_off_by_a_crash_is_failed_and_refunded(
    start_worker: StartWorker, model: ScriptedModelServer, tmp_path: Path, database_url: str | None
) -> None:
    model.add(Hang(300))  # the run waits on the model until the worker is killed
    base, process = await start_worker(AGENT_API_KEYS=KEYS)
    async with aiohttp.ClientSession() as session:
        task = await call(
            session, "POST", f"{base}/v1/tasks", ALICE, TASK | {"assignee": "general", "budget": 7}
        )
        assert task["status"] == "progress" and task["run_id"]
        for _ in range(200):  # until the run is waiting on the model
            if model.requests:
                break
            await asyncio.sleep(0.05)
        assert model.requests
    process.kill()
    await process.wait()
    base, _ = await start_worker(AGENT_API_KEYS=KEYS)
    async with aiohttp.ClientSession() as session:
        after = await call(session, "GET", f"{base}/v1/tasks/{task['task_id']}", ALICE)
        assert after["status"] == "failed", after
        assert "stopped" in after["quality_notes"] or "interrupted" in after["quality_notes"]
        wallet = await call(session, "GET", f"{base}/v1/wallet", ALICE)
        assert (wallet["balance"], wallet["frozen"]) == (1000, 0)
        run = await call(session, "GET", f"{base}/api/v1/tasks/{task['run_id']}", ALICE)
    assert run["status"] == "failed"
    await check_money(store_target(tmp_path, database_url))

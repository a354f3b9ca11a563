"""Several ``agent-worker serve`` processes on one PostgreSQL database.

A task runs in the worker that admitted it, or, past that worker's running cap, in whichever
worker takes it from the queue first (also after its own worker died); any worker answers for it: polls, long-polls and SSE
woken by the store's notifications, cancel carried to the running worker. A worker killed with
SIGKILL loses its lease: another ends its tasks as interrupted and removes its containers. The
per-user limit is the database's, so concurrent submits across workers admit one task.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from runtime.tasks.manager import INTERRUPTED
from tests.api.test_durability import call
from tests.api.test_platform_crash import ALICE, BOB, KEYS, TASK
from tests.api.test_platform_crash import call as platform_call
from tests.api.test_tasks import wait_for_process
from tests.conftest import instance_containers
from tests.fakes import Call, Hang, Reply, ScriptedModelServer, ToolCalls
from tests.mounts import unmount_under
from tests.served_worker import ServedWorker, serve, worker_env

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

GUARD = 90.0  # seconds any condition gets before the test fails; never a measured time
FINAL = {"run_completed", "run_failed", "run_canceled"}
StartWorkers = Callable[..., Awaitable[list[ServedWorker]]]


@pytest.fixture
async def workers(
    tmp_path: Path,
    model: ScriptedModelServer,
    sandbox_image: str,
    instance_id: str,
    docker_client: docker.DockerClient,
    database_url: str,
) -> AsyncIterator[StartWorkers]:
    """Starts workers on one database and one data directory (as a shared volume would be), each
    its own instance, with a short lease; kills them and removes their containers at the end."""
    started: list[ServedWorker] = []
    env = worker_env(
        model.base_url,
        tmp_path / "data",
        database_url,
        sandbox_image,
        AGENT_LOG_FORMAT="json",
        AGENT_RATE_LIMIT_PER_MINUTE="0",  # the tests poll in loops; per worker anyway
        AGENT_WORKER_LEASE_SECONDS="3",
        AGENT_WORKER_HEARTBEAT_SECONDS="0.5",
    )

    async def start(count: int, *, together: bool = False, **overrides: str) -> list[ServedWorker]:
        """``count`` more workers, one after the other, or all at once (``together``)."""
        numbers = range(len(started), len(started) + count)

        def one(number: int) -> Awaitable[ServedWorker]:
            return serve({**env, **overrides}, f"{instance_id}-w{number}", tmp_path / f"worker-{number}.log")

        if together:
            outcomes = await asyncio.gather(*(one(n) for n in numbers), return_exceptions=True)
            batch = [w for w in outcomes if isinstance(w, ServedWorker)]
            started.extend(batch)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            return batch
        batch = []
        for number in numbers:
            worker = await one(number)
            started.append(worker)
            batch.append(worker)
        return batch

    yield start
    for worker in started:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()
    for worker in started:
        for container in instance_containers(docker_client, worker.instance):
            docker_client.api.remove_container(container["Id"], force=True)
    unmount_under(tmp_path)


async def submit(base: str, model: ScriptedModelServer | None = None, conversation: str | None = None) -> str:
    """A task that runs ``sleep 300`` in its sandbox (when ``model`` is given: its script's next turn)."""
    if model is not None:
        model.add(ToolCalls([Call("execute_bash", {"command": "sleep 300"})]))
    if conversation is None:
        conversation = (await call("POST", f"{base}/api/v1/conversations"))["conversation_id"]
    accepted = await call(
        "POST", f"{base}/api/v1/messages", {"conversation_id": conversation, "message": "x"}, 202
    )
    task_id: str = accepted["task_id"]
    return task_id


async def events(base: str, task_id: str, offset: int = 0, wait: float = 0) -> dict[str, Any]:
    data: dict[str, Any] = (await call("GET", f"{base}/api/v1/tasks/{task_id}?from={offset}&wait={wait}"))[
        "data"
    ]
    return data


async def until_status(base: str, task_id: str, *wanted: str) -> dict[str, Any]:
    """The task's whole log once its status is one of ``wanted``, long-polling ``base``."""
    for _ in range(200):
        data = await events(base, task_id)
        if data["status"] in wanted:
            return data
        await events(base, task_id, data["next_offset"], wait=1)
    raise AssertionError(f"task {task_id} never reached {wanted}")


async def sse(base: str, task_id: str, last_event_id: int | None = None) -> list[tuple[int, str]]:
    """(offset, type) of every frame the task's SSE stream sends until it closes."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    frames: list[tuple[int, str]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/v1/tasks/{task_id}/events", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                event = json.loads(line[6:])
                frames.append((event["offset"], event["type"]))
    return frames


def single_log(frames: list[tuple[int, str]], start: int = 0) -> None:
    """Offsets from ``start`` with no gap and no repeat; exactly one final event, the last."""
    assert [offset for offset, _ in frames] == list(range(start, start + len(frames)))
    assert [kind for _, kind in frames if kind in FINAL] == [frames[-1][1]]


async def no_containers(docker_client: docker.DockerClient, instance: str) -> None:
    for _ in range(int(GUARD * 10)):
        if not instance_containers(docker_client, instance):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"containers of {instance} were never removed")


async def test_a_task_on_one_worker_is_followed_and_canceled_on_another(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient
) -> None:
    a, b = await workers(2)
    conversation = (await call("POST", f"{a.base}/api/v1/conversations"))["conversation_id"]
    task_id = await submit(a.base, model, conversation)
    await wait_for_process(docker_client, a.instance, "sleep 300")
    busy = await call("DELETE", f"{b.base}/api/v1/conversations/{conversation}", status=409)
    assert "running task" in busy["error"]
    stream = asyncio.create_task(sse(b.base, task_id))
    so_far = await events(b.base, task_id)
    assert so_far["status"] == "running"
    assert [e["type"] for e in so_far["events"]][-1] == "tool_call"
    long_poll = asyncio.create_task(events(b.base, task_id, so_far["next_offset"], wait=25))

    canceled = await call("POST", f"{b.base}/api/v1/tasks/{task_id}/cancel")
    assert canceled["status"] == "canceled"  # b waited for a to end it

    held = await asyncio.wait_for(long_poll, GUARD)
    assert held["events"]
    assert held["events"][0]["offset"] == so_far["next_offset"]
    streamed = await asyncio.wait_for(stream, GUARD)
    single_log(streamed)
    assert streamed[-1][1] == "run_canceled"
    on_a, on_b = await events(a.base, task_id), await events(b.base, task_id)
    assert on_a == on_b
    assert [(e["offset"], e["type"]) for e in on_b["events"]] == streamed
    resumed = await sse(b.base, task_id, last_event_id=2)  # as a client reconnecting after offset 2
    assert resumed == streamed[3:]
    assert a.process.returncode is None  # the cancel ended the task, not its worker


async def test_every_worker_streams_the_same_events_once(
    workers: StartWorkers, model: ScriptedModelServer
) -> None:
    a, b, c = await workers(3)
    model.add(ToolCalls([Call("execute_bash", {"command": f"echo {n}"}) for n in range(8)]))
    model.add(ToolCalls([Call("execute_bash", {"command": f"echo more {n}"}) for n in range(8)]))
    model.add(Reply("done", chunk_delay=0.01))
    conversation = (await call("POST", f"{a.base}/api/v1/conversations"))["conversation_id"]
    gate = asyncio.Event()

    async def follower(base: str) -> list[tuple[int, str]]:
        await gate.wait()
        return await sse(base, task_id)

    readers = [asyncio.create_task(follower(w.base)) for w in (b, c)]
    task_id = await submit(a.base, conversation=conversation)
    gate.set()
    streams = await asyncio.wait_for(asyncio.gather(*readers), GUARD)
    for streamed in streams:
        single_log(streamed)
        assert streamed[-1][1] == "run_completed"
    assert streams[0] == streams[1]
    logs = [[(e["offset"], e["type"]) for e in (await events(w.base, task_id))["events"]] for w in (a, b, c)]
    assert logs == [streams[0]] * 3
    assert sum(kind == "tool_result" for _, kind in streams[0]) == 16


async def test_a_killed_workers_task_is_ended_by_another_and_its_sandbox_removed(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient
) -> None:
    a, b, c = await workers(3)
    conversation = (await call("POST", f"{a.base}/api/v1/conversations"))["conversation_id"]
    task_id = await submit(a.base, model, conversation)
    await wait_for_process(docker_client, a.instance, "sleep 300")
    stream = asyncio.create_task(sse(c.base, task_id))
    before = await events(b.base, task_id)

    a.process.send_signal(signal.SIGKILL)
    await a.process.wait()

    ended = await until_status(b.base, task_id, "failed", "completed", "canceled")
    assert ended["status"] == "failed"
    assert ended["events"][-1]["type"] == "run_failed"
    assert ended["events"][-1]["data"]["error"] == INTERRUPTED
    assert ended["events"][: len(before["events"])] == before["events"]
    streamed = await asyncio.wait_for(stream, GUARD)
    single_log(streamed)
    assert streamed == [(e["offset"], e["type"]) for e in ended["events"]]
    await no_containers(docker_client, a.instance)  # reaped by a live worker once the lease was gone

    model.add(Reply("picked up"))  # the conversation and its workspace carry on on another worker
    follow_up = await submit(b.base, conversation=conversation)
    done = await until_status(c.base, follow_up, "completed", "failed", "canceled")
    assert done["status"] == "completed"
    assert b.process.returncode is None and c.process.returncode is None


async def test_the_per_user_limit_holds_across_workers_under_concurrent_submits(
    workers: StartWorkers, model: ScriptedModelServer
) -> None:
    started = await workers(3, together=True)  # at once, as compose starts them
    model.add(ToolCalls([Call("execute_bash", {"command": "sleep 300"})]))
    conversations = [
        (await call("POST", f"{w.base}/api/v1/conversations"))["conversation_id"]
        for w in started
        for _ in range(3)
    ]

    async def attempt(base: str, conversation: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/api/v1/messages", json={"conversation_id": conversation, "message": "x"}
            ) as response,
        ):
            return response.status, await response.json()

    answers = await asyncio.gather(
        *(attempt(started[n % 3].base, conversation) for n, conversation in enumerate(conversations))
    )
    assert sorted(status for status, _ in answers) == [202] + [409] * 8
    (admitted,) = [body["task_id"] for status, body in answers if status == 202]
    other = started[1].base
    assert (await call("POST", f"{other}/api/v1/tasks/{admitted}/cancel"))["status"] == "canceled"


async def test_an_a2a_stream_on_one_worker_follows_a_task_canceled_through_a2a_on_another(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient
) -> None:
    a, b, c = await workers(3)
    task_id = await submit(a.base, model)
    await wait_for_process(docker_client, a.instance, "sleep 300")

    subscribed = asyncio.Event()

    async def resubscribe() -> list[dict[str, Any]]:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/resubscribe", "params": {"id": task_id}}
        frames = []
        async with aiohttp.ClientSession() as session, session.post(f"{c.base}/a2a", json=body) as response:
            assert response.status == 200, await response.text()
            async for raw in response.content:
                line = raw.decode()
                if line.startswith("data: "):
                    frames.append(json.loads(line[6:]))
                    subscribed.set()
        return frames

    stream = asyncio.create_task(resubscribe())
    # Its first frame (the task as it stands) before the cancel: a stream that reached c only after
    # the task had ended would carry that snapshot alone, with no final status update to check.
    await asyncio.wait_for(subscribed.wait(), GUARD)
    got = await call(
        "POST", f"{b.base}/a2a", {"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task_id}}
    )
    assert got["result"]["status"]["state"] == "working"
    canceled = await call(
        "POST",
        f"{b.base}/a2a",
        {"jsonrpc": "2.0", "id": 3, "method": "tasks/cancel", "params": {"id": task_id}},
    )
    assert canceled["result"]["status"]["state"] == "canceled"
    frames = await asyncio.wait_for(stream, GUARD)
    assert frames[-1]["result"]["status"]["state"] == "canceled"
    assert frames[-1]["result"].get("final") is True


async def test_a_house_task_on_a_live_worker_is_left_to_it_and_settled_by_another_once_it_dies(
    workers: StartWorkers, model: ScriptedModelServer
) -> None:
    model.add(Hang(300))  # the house agent's run waits on the model
    (a,) = await workers(1, AGENT_API_KEYS=KEYS)
    async with aiohttp.ClientSession() as session:
        task = await platform_call(
            session, "POST", f"{a.base}/v1/tasks", ALICE, TASK | {"assignee": "general", "budget": 7}
        )
        assert task["status"] == "progress" and task["run_id"]
        for _ in range(600):  # until the run waits on the model
            if model.requests:
                break
            await asyncio.sleep(0.05)
        assert model.requests
        (b,) = await workers(1, AGENT_API_KEYS=KEYS)  # its start-up settles what stopped workers left
        seen = await platform_call(session, "GET", f"{b.base}/v1/tasks/{task['task_id']}", ALICE)
        assert seen["status"] == "progress"  # a runs it: not b's to settle
        assert (await platform_call(session, "GET", f"{b.base}/v1/wallet", ALICE))["frozen"] == 7

        a.process.send_signal(signal.SIGKILL)
        await a.process.wait()
        for _ in range(int(GUARD * 10)):  # b's sweep ends the run once a's lease is gone, then settles
            after = await platform_call(session, "GET", f"{b.base}/v1/tasks/{task['task_id']}", ALICE)
            if after["status"] != "progress":
                break
            await asyncio.sleep(0.1)
        assert after["status"] == "failed", after
        assert "interrupted" in after["quality_notes"]
        wallet = await platform_call(session, "GET", f"{b.base}/v1/wallet", ALICE)
        assert (wallet["balance"], wallet["frozen"]) == (1000, 0)


# --- the queue: a task past its worker's running cap waits in the database for any worker ---------

QUEUEING = {"AGENT_MAX_RUNNING_TASKS": "1", "AGENT_TASK_MAX_PER_USER": "3"}


async def test_a_task_queued_on_a_busy_worker_is_run_by_another(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient
) -> None:
    a, b = await workers(2, **QUEUEING)
    busy = await submit(a.base, model)
    await wait_for_process(docker_client, a.instance, "sleep 300")
    model.add(ToolCalls([Call("execute_bash", {"command": "echo ran on the other worker"})]))
    model.add(Reply("done"))

    queued = await call("POST", f"{a.base}/api/v1/messages", {"message": "x"}, 202)

    assert queued["status"] == "pending"  # a's one slot is taken
    done = await until_status(a.base, queued["task_id"], "completed", "failed", "canceled")
    assert done["status"] == "completed", done
    kinds = [e["type"] for e in done["events"] if e["type"] not in ("text_chunk", "tool_output")]
    assert kinds[:3] == ["run_started", "status_changed", "iteration_started"]
    results = [e["data"] for e in done["events"] if e["type"] == "tool_result"]
    assert "ran on the other worker" in json.dumps(results[0])
    assert instance_containers(docker_client, b.instance)  # its sandbox is b's: b ran it
    assert (await events(b.base, busy))["status"] == "running"  # a's task goes on
    assert (await call("POST", f"{b.base}/api/v1/tasks/{busy}/cancel"))["status"] == "canceled"


async def test_a_killed_workers_queued_task_is_run_by_another(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient
) -> None:
    (a,) = await workers(1, **QUEUEING)
    busy = await submit(a.base, model)
    await wait_for_process(docker_client, a.instance, "sleep 300")
    model.add(Reply("outlived its worker"))
    queued = await call("POST", f"{a.base}/api/v1/messages", {"message": "x"}, 202)
    assert queued["status"] == "pending"

    a.process.send_signal(signal.SIGKILL)
    await a.process.wait()
    (b,) = await workers(1, **QUEUEING)

    done = await until_status(b.base, queued["task_id"], "completed", "failed", "canceled")
    assert done["status"] == "completed", done
    assert done["events"][-1]["data"]["response"] == "outlived its worker"
    interrupted = await until_status(b.base, busy, "completed", "failed", "canceled")
    assert (interrupted["status"], interrupted["events"][-1]["data"]["error"]) == ("failed", INTERRUPTED)


@pytest.mark.parametrize("end", ["kill", "stop"])
async def test_a_queued_order_of_a_gone_worker_runs_elsewhere_and_settles_once(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient, end: str
) -> None:
    """Killed, its lease sweep may settle orders too; stopped (SIGTERM, no grace), nothing sweeps
    after it, so only the worker that ends the order's task can settle it."""
    (a,) = await workers(1, AGENT_API_KEYS=KEYS, AGENT_MAX_RUNNING_TASKS="1", AGENT_SHUTDOWN_GRACE="0")
    model.add(ToolCalls([Call("execute_bash", {"command": "sleep 300"})]))
    async with aiohttp.ClientSession() as session:
        capability = {
            "id": "cap_queued",
            "name": "Queued",
            "description": "Waits its turn",
            "category": "test",
            "default_input": "go",
            "allowed_tools": [],
            "visibility": "public",
            "price": 25,
        }
        await platform_call(session, "POST", f"{a.base}/api/v1/capabilities", BOB, capability)
        async with session.post(f"{a.base}/api/v1/messages", json={"message": "x"}, headers=BOB) as response:
            assert response.status == 202, await response.text()  # bob's own task takes a's one slot
        await wait_for_process(docker_client, a.instance, "sleep 300")
        model.add(Reply("delivered"))
        order = await platform_call(
            session, "POST", f"{a.base}/api/v1/transactions", ALICE, {"capability_id": "cap_queued"}
        )
        assert (await events_of(session, a.base, order["id"]))["status"] == "pending"

        # The worker that placed it, and would have watched it, goes; the order stays queued.
        a.process.send_signal(signal.SIGKILL if end == "kill" else signal.SIGTERM)
        assert await asyncio.wait_for(a.process.wait(), GUARD) == (-signal.SIGKILL if end == "kill" else 0)
        (b,) = await workers(1, AGENT_API_KEYS=KEYS, AGENT_MAX_RUNNING_TASKS="1")

        for _ in range(int(GUARD * 10)):
            settled = await platform_call(
                session, "GET", f"{b.base}/api/v1/transactions/{order['id']}", ALICE
            )
            if settled["status"] not in ("pending", "running"):
                break
            await asyncio.sleep(0.1)
        assert settled["status"] == "completed", settled
        buyer = await platform_call(session, "GET", f"{b.base}/api/v1/wallet", ALICE)
        seller = await platform_call(session, "GET", f"{b.base}/api/v1/wallet", BOB)
        assert (buyer["balance"], buyer["frozen"], buyer["total_spent"]) == (975, 0, 25)
        assert (seller["balance"], seller["total_earned"]) == (1025, 25)  # paid once


async def events_of(session: aiohttp.ClientSession, base: str, task_id: str) -> dict[str, Any]:
    return await platform_call(session, "GET", f"{base}/api/v1/tasks/{task_id}", ALICE)  # type: ignore[no-any-return]


async def test_a_queued_house_task_of_a_stopped_worker_is_done_and_paid_by_the_one_that_runs_it(
    workers: StartWorkers, model: ScriptedModelServer, docker_client: docker.DockerClient
) -> None:
    (a,) = await workers(1, AGENT_API_KEYS=KEYS, AGENT_MAX_RUNNING_TASKS="1", AGENT_SHUTDOWN_GRACE="0")
    model.add(ToolCalls([Call("execute_bash", {"command": "sleep 300"})]))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{a.base}/api/v1/messages", json={"message": "x"}, headers=BOB) as response:
            assert response.status == 202, await response.text()  # bob's task takes a's one slot
        await wait_for_process(docker_client, a.instance, "sleep 300")
        model.add(Reply("the report"))
        task = await platform_call(
            session, "POST", f"{a.base}/v1/tasks", ALICE, TASK | {"assignee": "general", "budget": 7}
        )
        assert task["status"] == "progress" and task["run_id"]
        assert (await events_of(session, a.base, task["run_id"]))["status"] == "pending"

        a.process.send_signal(signal.SIGTERM)  # leaves cleanly: no sweep will settle anything after it
        assert await asyncio.wait_for(a.process.wait(), GUARD) == 0
        (b,) = await workers(1, AGENT_API_KEYS=KEYS, AGENT_MAX_RUNNING_TASKS="1")

        for _ in range(int(GUARD * 10)):
            after = await platform_call(session, "GET", f"{b.base}/v1/tasks/{task['task_id']}", ALICE)
            if after["status"] == "done":
                break
            await asyncio.sleep(0.1)
        assert after["status"] == "done", after
        wallet = await platform_call(session, "GET", f"{b.base}/v1/wallet", ALICE)
        assert (wallet["balance"], wallet["frozen"]) == (993, 0)  # paid, once

"""Worker leases on a shared database: whose runs a sweep ends, the listener's reconnection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from runtime.engine.events import FINAL_EVENT_TYPES, IterationStarted, RunCompleted, RunFailed, Usage
from runtime.store import Store
from runtime.tasks.leases import LeaseConfig, WorkerLease
from runtime.tasks.manager import INTERRUPTED
from tests.runtime.test_task_manager import SLEEP, MakeTasks
from tests.runtime.test_task_manager import make_tasks as make_tasks  # the fixture, for this module

GUARD = 30.0
LONG = 3600.0  # a lease that cannot expire during a test
engines = pytest.mark.both_engines
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def expire(store: Store, instance: str) -> None:
    """The instance's lease, as if its last heartbeat were long ago."""
    await store.workers.beat(instance, -1.0)


@engines
async def test_a_sweep_ends_the_runs_of_expired_workers_only(store_target: str | Path) -> None:
    async with Store.open(store_target, "a") as a, Store.open(store_target, "b") as b:
        await a.workers.beat("a", LONG)
        await b.workers.beat("b", LONG)
        await a.create_run("a-run", "u", "task")
        await b.create_run("b-run", "u", "task")
        await b.append("b-run", IterationStarted(iteration=3))
        assert await a.fail_interrupted_runs(INTERRUPTED, at_start=False) == []
        assert await b.fail_interrupted_runs(INTERRUPTED, at_start=False) == []

        await expire(b, "b")
        assert await b.fail_interrupted_runs(INTERRUPTED, at_start=False) == []  # never its own
        assert await a.fail_interrupted_runs(INTERRUPTED, at_start=False) == ["b-run"]
        assert await a.fail_interrupted_runs(INTERRUPTED, at_start=False) == []  # once
        ended = await a.get_run("b-run")
        assert (ended.status, ended.error) == ("failed", INTERRUPTED)
        assert [e.event for e in await a.events("b-run")] == [
            IterationStarted(iteration=3),
            RunFailed(error=INTERRUPTED, response="", iterations=3, usage=Usage()),
        ]
        assert (await a.get_run("a-run")).status == "running"


@engines
async def test_a_run_whose_final_event_is_stored_gets_no_second_one(store_target: str | Path) -> None:
    async with Store.open(store_target, "a") as a, Store.open(store_target, "b") as b:
        await b.workers.beat("b", LONG)
        await b.create_run("r", "u", "task")
        final = RunCompleted(response="done", iterations=1, usage=Usage())
        await b.append("r", final)  # the worker died before writing the status
        await expire(b, "b")
        assert await a.fail_interrupted_runs(INTERRUPTED, at_start=False) == ["r"]
        assert [e.event for e in await a.events("r")] == [final]
        assert (await a.get_run("r")).status == "failed"


@engines
async def test_at_start_a_worker_ends_its_own_last_runs_and_runs_nobody_held(
    store_target: str | Path,
) -> None:
    async with Store.open(store_target) as legacy:
        await legacy.create_run("old", "u", "chat")  # written before leases: no worker
    async with Store.open(store_target, "a") as a, Store.open(store_target, "b") as b:
        await b.workers.beat("b", LONG)
        await b.create_run("live", "u", "task")
        await a.workers.beat("a", LONG)
        await a.create_run("mine", "u", "task")
    async with Store.open(store_target, "a") as a:  # a's next process
        assert sorted(await a.fail_interrupted_runs(INTERRUPTED, at_start=True)) == ["mine", "old"]
        assert (await a.get_run("live")).status == "running"


@postgresql_only
async def test_concurrent_sweeps_end_each_run_once(store_target: str) -> None:
    async with Store.open(store_target, "dead") as dead:
        await dead.workers.beat("dead", LONG)
        for number in range(20):
            await dead.create_run(f"r{number}", "u", "task")
        await expire(dead, "dead")
    async with Store.open(store_target, "a") as a, Store.open(store_target, "b") as b:
        await a.workers.beat("a", LONG)  # live sweepers: a run one has claimed is its own
        await b.workers.beat("b", LONG)
        ended_a, ended_b = await asyncio.gather(
            a.fail_interrupted_runs(INTERRUPTED, at_start=False),
            b.fail_interrupted_runs(INTERRUPTED, at_start=False),
        )
        assert sorted(ended_a + ended_b) == sorted(f"r{number}" for number in range(20))
        for number in range(20):
            assert [e.event.type for e in await a.events(f"r{number}")] == ["run_failed"]


@engines
async def test_the_lease_sweep_removes_a_dead_workers_containers_and_row(store_target: str | Path) -> None:
    reaped: list[str] = []

    async def reap(instance: str) -> int:
        reaped.append(instance)
        return 1

    async with Store.open(store_target, "a") as a:
        await a.workers.beat("dead", -1.0)
        lease = WorkerLease(a, "a", LeaseConfig(lease_seconds=LONG, heartbeat_seconds=LONG / 2), reap)
        async with lease.held():
            assert reaped == ["dead"]
            assert await a.workers.live() == ["a"]
            assert await a.workers.expired() == []
        assert await a.workers.live() == []  # given up at the end


@engines
async def test_every_worker_reads_one_shared_secret(store_target: str | Path) -> None:
    async with Store.open(store_target, "a") as a, Store.open(store_target, "b") as b:
        first, second = await asyncio.gather(
            a.secrets.ensure("k", b"1" * 32), b.secrets.ensure("k", b"2" * 32)
        )
        assert first == second
        assert await a.secrets.ensure("k", b"3" * 32) == first


@postgresql_only
async def test_the_listener_reconnects_and_wakes_readers_after_its_connection_drops(
    store_target: str,
) -> None:
    async with Store.open(store_target, "a") as reader, Store.open(store_target, "b") as writer:
        await writer.create_run("r", "u", "chat")
        dsn = store_target.replace("postgresql+asyncpg://", "postgresql://")
        admin = await asyncpg.connect(dsn)
        try:
            listeners = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
            assert len(listeners) == 2
            woken = reader.watch("r")
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
                [r["pid"] for r in listeners],
            )
            await asyncio.wait_for(woken.wait(), GUARD)  # read again: what was sent meanwhile is lost

            for _ in range(600):  # until both stores listen again
                if len(await admin.fetch("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")) == 2:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the listeners never came back")
        finally:
            await admin.close()
        woken = reader.watch("r")
        await writer.append("r", IterationStarted(iteration=1))  # from another store: only NOTIFY wakes
        await asyncio.wait_for(woken.wait(), GUARD)


@engines
async def test_a_starting_worker_closes_only_keys_left_in_flight_by_dead_workers(
    store_target: str | Path,
) -> None:
    async with Store.open(store_target, "a") as a, Store.open(store_target, "b") as b:
        await a.workers.beat("a", LONG)
        await b.workers.beat("b", LONG)
        assert await a.idempotency.claim("u", "header", "live", "f", 0.0, LONG)
        assert await b.idempotency.claim("u", "header", "dead", "f", 0.0, LONG)
        await expire(b, "b")
        async with Store.open(store_target, "c") as c:
            assert await c.idempotency.interrupt_in_flight("interrupted", LONG) == 1
            live, dead = (
                await c.idempotency.find("u", "header", "live"),
                await c.idempotency.find("u", "header", "dead"),
            )
        assert live is not None and live.state == "in_flight"
        assert dead is not None and (dead.state, dead.reason) == ("done", "interrupted")


@engines
async def test_a_heartbeat_tells_whether_the_lease_was_still_held(store_target: str | Path) -> None:
    async with Store.open(store_target, "a") as a:
        assert not await a.workers.beat("a", LONG)  # no lease yet: made now
        assert await a.workers.beat("a", LONG)
        await expire(a, "a")
        assert not await a.workers.beat("a", LONG)  # expired: others may have ended its runs
        assert await a.workers.live() == ["a"]


@engines
async def test_a_worker_that_finds_its_lease_lost_lets_go_of_tasks_ended_elsewhere(
    make_tasks: MakeTasks, store_target: str | Path
) -> None:
    tasks = await make_tasks()
    tasks.store.instance = "a"  # the runs it creates are held by instance a
    let_go: list[str] = []

    async def on_lost() -> None:
        let_go.extend(await tasks.manager.let_go_of_ended())

    lease = WorkerLease(
        tasks.store, "a", LeaseConfig(lease_seconds=LONG, heartbeat_seconds=LONG / 2), _no_reap
    )
    lease.on_lost(on_lost)
    async with lease.held():  # its heartbeats are the test's: lease.renew()
        tasks.server.add(SLEEP)
        record = await tasks.submit()
        hanging = await tasks.factory.next_hanging()
        await expire(tasks.store, "a")  # cut off from the database past its lease
        async with Store.open(store_target, "b") as b:
            assert await b.fail_interrupted_runs(INTERRUPTED, at_start=False) == [record.id]
        await asyncio.wait_for(lease.renew(), GUARD)
        assert let_go == [record.id]

    assert not tasks.manager.is_active(record.id)
    assert tasks.factory.sandboxes[0].killed == [hanging]
    final = [e.event for e in await tasks.events(record.id) if e.event.type in FINAL_EVENT_TYPES]
    assert final == [RunFailed(error=INTERRUPTED, response="", iterations=1, usage=Usage())]  # b's, once
    assert (await tasks.store.get_run(record.id)).status == "failed"


async def _no_reap(_instance: str) -> int:
    return 0


def test_a_heartbeat_as_long_as_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="heartbeat_seconds must be less than lease_seconds"):
        LeaseConfig(lease_seconds=5, heartbeat_seconds=5)

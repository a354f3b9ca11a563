"""House agents: the worker's global capabilities, doing marketplace tasks in their sandboxes.

A task published with a house agent as its assignee is accepted by it in the publishing
transaction; :meth:`HouseAgents.start` then runs it through the agent loop as a task of the
publisher (the capability's profile, the description as the message), in a workspace of its own
named after the task, so the publisher follows it live on ``/api/v1/tasks/{run_id}`` and finds
its files in that workspace. The worker that ends the run, whichever it is (a run may wait in the
queue and run on another worker than the one that started it), settles the house task
(:meth:`HouseAgents.settle_finished`, called by the task manager): a completed run makes the task
``done`` (deliverables ``{report, files, run_id}``, the escrow paid to the house agent), any other
end makes it ``failed`` (escrow refunded), in one conditional update. If the worker stops first, :meth:`HouseAgents.reconcile` at
the next start-up settles every house task left in progress from its run as recorded: the
interrupted runs were failed by then, so their tasks fail and are refunded; a run that completed
before the crash still pays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

import structlog

from runtime.engine.events import RunCanceled, RunCompleted, RunFailed
from runtime.features.capability_runs import CapabilityRuns
from runtime.store import Store
from runtime.store.platform_tasks import TaskRow
from runtime.tasks.follow import FinalEvent, final_event
from runtime.tasks.manager import TaskManager
from runtime.workspaces.records import Workspaces

__all__ = ["HouseAgents", "house_agent_ids"]

log = structlog.get_logger(__name__)


async def house_agent_ids(store: Store, capability_ids: Iterable[str]) -> list[str]:
    """The global capabilities that are house nodes (a registered node may hold such an id first)."""
    ids = []
    for capability_id in capability_ids:
        node = await store.nodes.get_node(capability_id)
        if node is not None and node.kind == "house":
            ids.append(capability_id)
    return ids


class HouseAgents:
    def __init__(
        self,
        store: Store,
        ids: Iterable[str],
        runs: CapabilityRuns,
        tasks: TaskManager,
        workspaces: Workspaces,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._platform = store.platform_tasks
        self._ids = frozenset(ids)
        self._runs = runs
        self._tasks = tasks
        self._workspaces = workspaces
        self._clock = clock

    def is_house(self, node_id: str) -> bool:
        return node_id in self._ids

    async def start(self, task: TaskRow) -> None:
        """Start the run of a task a house agent accepted (settled when the run ends)."""
        assert task.acceptor is not None and self.is_house(task.acceptor)
        await self._workspaces.ensure(task.publisher, task.id)
        started = await self._runs.start(
            task.publisher, task.acceptor, task.description, surface="platform", workspace_id=task.id
        )
        run_id = started.record.id
        await self._platform.set_run(task.id, run_id)
        log.info("house_task_started", task_id=task.id, agent=task.acceptor, run_id=run_id)

    async def reconcile(self, grace: float = 0.0) -> int:
        """Settle the house tasks a stopped worker left in progress; how many. At start-up, and
        (several workers) after a dead worker's runs were ended. A task whose run goes on, in any
        worker, is settled by the worker that ends it; one with no final event changed less than ``grace`` seconds ago
        may be its worker's still starting the run (several workers: the lease's length)."""
        settled = 0
        now = self._clock()
        for task in await self._platform.in_progress_by(sorted(self._ids)):
            if task.run_id is not None and await self._tasks.running(task.run_id):
                continue
            final = None if task.run_id is None else await final_event(self._tasks, task.run_id, within=0.0)
            if final is None and now - task.updated_at < grace:
                continue
            if await self._settle(task, task.run_id, final, "the worker stopped before the run finished"):
                settled += 1
        if settled:
            log.warning("house_tasks_reconciled", count=settled)
        return settled

    async def settle_finished(self, run_id: str) -> None:
        """Settle the house task run by ``run_id`` if there is one in progress (the run has just ended here)."""
        task = await self._platform.in_progress_by_run(run_id)
        if task is None or task.acceptor is None or not self.is_house(task.acceptor):
            return
        final = await final_event(self._tasks, run_id, within=0.0)
        await self._settle(task, run_id, final, "the run ended without a final event")

    async def _settle(
        self, task: TaskRow, run_id: str | None, final: FinalEvent | None, missing: str
    ) -> bool:
        assert task.acceptor is not None
        now = self._clock()
        if run_id is not None and isinstance(final, RunCompleted):
            files = await self._files(task)
            deliverables = {"report": final.response, "files": files, "run_id": run_id}
            done = await self._platform.complete(
                task.id, task.acceptor, json.dumps(deliverables, ensure_ascii=False), None, now
            )
            log.info("house_task_done", task_id=task.id, run_id=run_id, settled=done)
            return done
        match final:
            case RunFailed():
                reason = f"the run failed: {final.error}"
            case RunCanceled():
                reason = f"the run was canceled: {final.reason}"
            case _:
                reason = missing if run_id is not None else "the worker stopped before the run started"
        failed = await self._platform.fail(task.id, task.acceptor, reason, now)
        log.info("house_task_failed", task_id=task.id, run_id=run_id, reason=reason, settled=failed)
        return failed

    async def _files(self, task: TaskRow) -> list[str]:
        tree = await (await self._workspaces.files(task.publisher, task.id)).list_tree()
        return [entry.path for entry in tree.files if entry.type == "file"]

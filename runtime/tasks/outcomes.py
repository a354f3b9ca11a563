"""A task's outcome, waited for up to a bound: for surfaces that answer in one reply (MCP).

It is read from the task's event log with :func:`runtime.tasks.follow.follow`, as polling and SSE
read it: the final event carries the answer (or the error).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.engine.events import RunCanceled, RunCompleted, RunFailed
from runtime.store import RunStatus, Store, StoredEvent
from runtime.tasks.follow import find_task, follow
from runtime.tasks.manager import TaskManager

__all__ = ["TaskOutcome", "wait_for_outcome"]

_FINAL_STATUS: dict[str, RunStatus] = {
    "run_completed": "completed",
    "run_failed": "failed",
    "run_canceled": "canceled",
}


class TaskOutcome(BaseModel):
    task_id: str
    conversation_id: str | None = Field(description="Send it again to continue the conversation.")
    status: RunStatus = Field(description="pending | running | completed | failed | canceled.")
    answer: str | None = Field(description="The agent's final answer (or, after a failure, its last text).")
    error: str | None = Field(description="Why the task failed or was canceled.")
    iterations: int | None = Field(description="Model calls the task made, once it has ended.")


async def wait_for_outcome(
    tasks: TaskManager, store: Store, owner: str, task_id: str, wait: float
) -> TaskOutcome:
    """The owner's task as it stands once it has ended, or after ``wait`` seconds if it has not.

    Another user's task (or a ``/chat`` run) is a :class:`NotFoundError`.
    """
    record = await find_task(store, owner, task_id)
    final: RunCompleted | RunFailed | RunCanceled | None = None
    async for item in follow(tasks, task_id, within=wait):
        if isinstance(item, StoredEvent) and isinstance(item.event, RunCompleted | RunFailed | RunCanceled):
            final = item.event
    if final is None:
        record = await store.get_run(task_id, owner)  # it may have gone from pending to running
        return TaskOutcome(
            task_id=task_id,
            conversation_id=record.conversation_id,
            status=record.status,
            answer=None,
            error=None,
            iterations=None,
        )
    answer: str | None
    error: str | None
    match final:
        case RunCompleted():
            answer, error = final.response, None
        case RunFailed():
            answer, error = final.response or None, final.error
        case RunCanceled():
            answer, error = None, final.reason
    # The final event is written before the status, so it decides: an ended task never reads running.
    return TaskOutcome(
        task_id=task_id,
        conversation_id=record.conversation_id,
        status=_FINAL_STATUS[final.type],
        answer=answer,
        error=error,
        iterations=final.iterations,
    )

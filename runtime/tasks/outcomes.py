"""A task's outcome, waited for up to a bound: for surfaces that answer in one reply (MCP).

It is read from the task's event log, the one polling and SSE read: the final event carries the
answer (or the error), and while the task runs the wait is a long poll on that log.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from runtime.engine.events import RunCanceled, RunCompleted, RunFailed
from runtime.errors import NotFoundError
from runtime.store import RunStatus, Store
from runtime.tasks.manager import TaskManager

__all__ = ["TaskOutcome", "wait_for_outcome"]

_PAGE = 1000

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
    record = await store.get_run(task_id, owner)
    if record.kind != "task":
        raise NotFoundError(f"task {task_id} not found")
    deadline = time.monotonic() + wait
    offset = 0
    final: RunCompleted | RunFailed | RunCanceled | None = None
    while final is None:
        remaining = deadline - time.monotonic()
        events = await tasks.events(task_id, offset, _PAGE, max(0.0, remaining))
        if not events:
            if remaining <= 0 or not tasks.is_active(task_id):
                break  # read to the end, and nothing more came within the wait
            continue  # woken for an event already read: wait again
        offset = events[-1].offset + 1
        for stored in events:
            if isinstance(stored.event, RunCompleted | RunFailed | RunCanceled):
                final = stored.event
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
    await tasks.wait_finished(task_id)  # the user's next message must not meet the old task's slot
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

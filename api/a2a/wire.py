"""A task as A2A shows it, in each dialect we speak; pure functions, no I/O.

Three dialects share ``POST /a2a``:

- ``flat``: the ``tasks/send`` dialect (the method names of the first A2A drafts) with flat task
  objects, ``status`` a string (``submitted | working | completed | failed | canceled``);
- ``0.3``: A2A v0.3 JSON-RPC objects (``kind`` discriminators, lowercase states, roles ``user`` /
  ``agent``);
- ``1.0``: A2A 1.0 (ProtoJSON: ``TASK_STATE_*`` / ``ROLE_*`` enums, stream results wrapped as
  ``{"task" | "statusUpdate" | "artifactUpdate": ...}``).

A :class:`TaskView` is folded from the task's record and its event log; each event it applies
yields the updates a stream sends. The answer is one artifact, ``answer``: text chunks stream into
it (``append: true``), and the final answer replaces it (``append: false, lastChunk: true``), so a
client that missed chunks still ends with the exact answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from runtime.store import RunRecord, RunStatus, StoredEvent

__all__ = [
    "ANSWER_ARTIFACT",
    "TERMINAL",
    "AnswerUpdate",
    "Dialect",
    "StatusUpdate",
    "TaskView",
    "Update",
    "send_result",
    "state_of",
    "status_of_state",
    "task_object",
    "update_result",
]

Dialect = Literal["flat", "0.3", "1.0"]
ANSWER_ARTIFACT = "answer"
TERMINAL: frozenset[RunStatus] = frozenset({"completed", "failed", "canceled"})

_STATES: dict[RunStatus, str] = {
    "pending": "submitted",
    "running": "working",
    "completed": "completed",
    "failed": "failed",
    "canceled": "canceled",
}


def state_of(status: RunStatus, dialect: Dialect) -> str:
    """Our status in the dialect's spelling: ``running`` → ``working`` / ``TASK_STATE_WORKING``."""
    state = _STATES[status]
    return f"TASK_STATE_{state.upper()}" if dialect == "1.0" else state


def status_of_state(state: str) -> RunStatus | None:
    """Ours for an A2A state in either spelling; None for a state our tasks never take."""
    name = state.removeprefix("TASK_STATE_").lower()
    return next((ours for ours, theirs in _STATES.items() if theirs == name), None)


@dataclass(frozen=True)
class StatusUpdate:
    note: str | None = None  # an agent message shown with the status: the tool running, the error
    progress: bool = False  # the state did not change (the flat dialect's stream reports changes only)


@dataclass(frozen=True)
class AnswerUpdate:
    text: str
    append: bool
    last: bool


Update = StatusUpdate | AnswerUpdate


@dataclass
class TaskView:
    id: str
    context_id: str
    status: RunStatus
    timestamp: float
    capability_id: str | None = None
    request: str = ""
    answer: str = ""
    reason: str | None = None  # why it failed or was canceled
    next_offset: int = 0

    @classmethod
    def of(cls, record: RunRecord, context_id: str, capability_id: str | None) -> TaskView:
        """Before any event: ``record`` is read before the events, so events can only move it on."""
        return cls(record.id, context_id, record.status, record.updated_at, capability_id)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def apply(self, stored: StoredEvent) -> list[Update]:
        event = stored.event
        self.next_offset = stored.offset + 1
        self.timestamp = stored.timestamp
        match event.type:
            case "run_started":
                self.request = event.message
            case "status_changed":
                self.status = "running"
                return [StatusUpdate()]
            case "text_chunk":
                append = bool(self.answer)
                self.answer += event.content
                return [AnswerUpdate(event.content, append=append, last=False)]
            case "tool_call":
                return [StatusUpdate(f"Running {event.name}", progress=True)]
            case "run_completed":
                self.status, self.answer = "completed", event.response
                return [AnswerUpdate(event.response, append=False, last=True), StatusUpdate()]
            case "run_failed" | "run_canceled":
                self.status = "failed" if event.type == "run_failed" else "canceled"
                self.reason = event.error if event.type == "run_failed" else event.reason
                return [StatusUpdate(self.reason)]
        return []


# --- rendering ------------------------------------------------------------------------------------


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _part(text: str, dialect: Dialect) -> dict[str, Any]:
    return {"kind": "text", "text": text} if dialect == "0.3" else {"text": text}


def _message(
    view: TaskView, role: Literal["user", "agent"], text: str, suffix: str, dialect: Dialect
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "messageId": f"{view.id}-{suffix}",
        "role": role if dialect == "0.3" else f"ROLE_{role.upper()}",
        "parts": [_part(text, dialect)],
        "contextId": view.context_id,
        "taskId": view.id,
    }
    return {"kind": "message", **message} if dialect == "0.3" else message


def _status(view: TaskView, note: str | None, dialect: Dialect) -> dict[str, Any]:
    status: dict[str, Any] = {"state": state_of(view.status, dialect), "timestamp": _time(view.timestamp)}
    if note:
        status["message"] = _message(view, "agent", note, f"status-{view.next_offset}", dialect)
    return status


def _artifact(text: str, dialect: Dialect) -> dict[str, Any]:
    return {"artifactId": ANSWER_ARTIFACT, "name": ANSWER_ARTIFACT, "parts": [_part(text, dialect)]}


def _flat_task(view: TaskView) -> dict[str, Any]:
    return {
        "id": view.id,
        "status": state_of(view.status, "flat"),
        "context_id": view.context_id,
        "capability_id": view.capability_id,
        "response": view.answer,
        "error": view.reason,
        "updated_at": view.timestamp,
    }


def task_object(view: TaskView, dialect: Dialect, history_length: int | None = None) -> dict[str, Any]:
    """The Task (tasks/get, GetTask): status, the answer artifact, and the exchange as history."""
    if dialect == "flat":
        return _flat_task(view)
    history = [_message(view, "user", view.request, "request", dialect)]
    if view.status == "completed":
        history.append(_message(view, "agent", view.answer, "answer", dialect))
    if history_length is not None:
        history = history[len(history) - history_length :] if history_length else []
    task: dict[str, Any] = {
        "id": view.id,
        "contextId": view.context_id,
        "status": _status(view, view.reason, dialect),
        "artifacts": [_artifact(view.answer, dialect)] if view.answer else [],
        "history": history,
    }
    if view.capability_id is not None:
        task["metadata"] = {"capability_id": view.capability_id}
    return {"kind": "task", **task} if dialect == "0.3" else task


def send_result(view: TaskView, dialect: Dialect, history_length: int | None = None) -> dict[str, Any]:
    """The Task as a send answers it, and as a stream's first result (1.0 wraps it: ``{"task": ...}``)."""
    task = task_object(view, dialect, history_length)
    return {"task": task} if dialect == "1.0" else task


def update_result(view: TaskView, update: Update, dialect: Dialect) -> dict[str, Any] | None:
    """One stream result for an update (after ``view.apply``); None: the dialect has no such event."""
    if dialect == "flat":
        return _flat_task(view) if isinstance(update, StatusUpdate) and not update.progress else None
    ids = {"taskId": view.id, "contextId": view.context_id}
    if isinstance(update, StatusUpdate):
        event: dict[str, Any] = {**ids, "status": _status(view, update.note, dialect)}
        if dialect == "1.0":
            return {"statusUpdate": event}
        return {"kind": "status-update", **event, "final": view.ended}
    event = {
        **ids,
        "artifact": _artifact(update.text, dialect),
        "append": update.append,
        "lastChunk": update.last,
    }
    return {"artifactUpdate": event} if dialect == "1.0" else {"kind": "artifact-update", **event}

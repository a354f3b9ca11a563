"""What the API answers, as pydantic models.

Fields the server adds later are ignored (``extra="ignore"``), so an older client keeps working
against a newer worker.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# What of this the package exports is listed once, in client/__init__.py.

TaskStatus = Literal["pending", "running", "completed", "failed", "canceled"]
FINAL_EVENTS = frozenset({"run_completed", "run_failed", "run_canceled"})
"""A task's log ends with exactly one of these."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TaskUsage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResult(_Model):
    """``POST /chat``: one run, answered when it is over."""

    id: str
    response: str
    logs: list[dict[str, Any]]
    usage: TaskUsage
    iterations: int
    processing_time: float
    error: str | None = None


class Workspace(_Model):
    workspace_id: str
    created_at: float
    python_mode: str


class Conversation(_Model):
    conversation_id: str
    workspace_id: str
    created_at: float


class TaskAccepted(_Model):
    """A started task: from a message, or a capability invoke (then ``capability_id`` is set, and
    ``transaction_id`` when it is a paid order of another user's capability)."""

    task_id: str
    conversation_id: str
    status: TaskStatus
    created_at: float
    capability_id: str | None = None
    transaction_id: str | None = None


class TaskEvent(_Model):
    """One event of a task's log (``docs/tasks.md``, "Event types")."""

    offset: int
    type: str
    data: dict[str, Any]
    timestamp: float

    @property
    def is_final(self) -> bool:
        return self.type in FINAL_EVENTS


class TaskState(_Model):
    """A page of a task's events, with its status (``GET /api/v1/tasks/{id}``)."""

    task_id: str
    status: TaskStatus
    events: list[TaskEvent]
    next_offset: int
    has_more: bool
    conversation_id: str | None
    workspace_id: str | None
    created_at: float
    updated_at: float
    error: str | None

    @property
    def is_over(self) -> bool:
        """Ended, and this page reached the end of its log."""
        return self.status not in ("pending", "running")


class TaskSummary(_Model):
    """One task of ``GET /api/v1/tasks``."""

    task_id: str
    status: TaskStatus
    conversation_id: str | None
    workspace_id: str | None
    capability_id: str | None
    amount: float | None = Field(description="The price, when the task is a paid capability order.")
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    usage: TaskUsage
    error: str | None


class TaskPage(_Model):
    tasks: list[TaskSummary]
    total: int
    page: int
    page_size: int
    has_more: bool


class CanceledTask(_Model):
    task_id: str
    status: TaskStatus


class UploadedFile(_Model):
    path: str
    size: int


class FileEntry(_Model):
    path: str
    type: str
    size: int | None = None
    modified: float | None = None


class FileList(_Model):
    files: list[FileEntry]
    truncated: bool

"""What a queued task keeps in the store, so that any worker can run it.

A :class:`~runtime.tasks.manager.TaskSpec` holds resolved objects (a model client, the workspace's
directory on this host); the queue keeps a :class:`QueuedRequest` instead, as JSON with the run
(``runs.request``), and the worker that claims the task rebuilds the spec from it through a
:data:`SpecResolver` (:meth:`runtime.tasks.requests.TaskStarter.rebuild`). The request is the spec
after every check and choice was made (system prompt composed, tools chosen, conversation made):
rebuilding it only looks the model up by its key and the workspace's directory by its id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from runtime.engine.loop import LoopConfig

if TYPE_CHECKING:
    from runtime.tasks.manager import TaskSpec

__all__ = ["QueuedRequest", "SpecResolver"]


class QueuedRequest(BaseModel):
    owner: str
    workspace_id: str
    conversation_id: str
    message: str
    max_iterations: int
    model_key: str | None = Field(description="The model registry's key; None: the worker's default.")
    loop_config: LoopConfig

    @classmethod
    def of(cls, spec: TaskSpec) -> QueuedRequest:
        return cls(
            owner=spec.owner,
            workspace_id=spec.workspace_id,
            conversation_id=spec.conversation_id,
            message=spec.message,
            max_iterations=spec.max_iterations,
            model_key=spec.model_key,
            loop_config=spec.loop_config,
        )


SpecResolver = Callable[[str, QueuedRequest], Awaitable["TaskSpec"]]
"""Rebuilds the spec of the task ``task_id`` from its stored request (raises if it cannot here)."""

"""Starting a task as a capability, and remembering how each such task was started.

Capability invokes (REST) and A2A sends go through :meth:`CapabilityRuns.start`: it resolves the
capability (or none: the worker's defaults), picks the message (the caller's, else the
capability's ``default_input``), starts the task through the one :class:`TaskStarter`, and records
the task's origin: the surface and the capability. A surface that answers one method name in two
shapes (the flat dialect's ``tasks/get`` against A2A 0.3's) tells them apart by that origin.

Someone else's priced capability runs only as an order (:mod:`runtime.platform.orders`), which
pays first and starts the task under the order's id: started any other way it is refused, so no
surface can run it for free.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from runtime.errors import ConflictError, InputError
from runtime.features.capabilities import Capabilities
from runtime.store import Store
from runtime.tasks.requests import StartedTask, TaskRequest, TaskStarter
from runtime.workspaces.records import DEFAULT_WORKSPACE

__all__ = ["CapabilityRuns", "Surface", "TaskOrigin"]

# "a2a-flat": /a2a's flat tasks/send dialect; "platform": a house agent doing a /v1 marketplace task;
# "order": an order placed on POST /api/v1/transactions (followed with the flat dialect's methods)
Surface = Literal["rest", "a2a", "a2a-flat", "platform", "order"]
# The flat dialect's surface was stored as "a2a-seed" before it had a name: rows written then read
# as "a2a-flat", so a task started before an upgrade keeps its shape.
_STORED_NAMES = {"a2a-seed": "a2a-flat"}


class TaskOrigin(BaseModel):
    surface: Surface
    capability_id: str | None


class CapabilityRuns:
    """The ``task_origins`` table, and the start of every task a capability or A2A asks for."""

    def __init__(self, store: Store, capabilities: Capabilities, starter: TaskStarter) -> None:
        self._origins = store.task_origins
        self._capabilities = capabilities
        self._starter = starter

    async def start(
        self,
        owner: str,
        capability_id: str | None,
        message: str | None,
        *,
        surface: Surface,
        conversation_id: str | None = None,
        workspace_id: str = DEFAULT_WORKSPACE,
        order_id: str | None = None,
    ) -> StartedTask:
        """Start a task as ``capability_id`` (None: the worker's own profile) on ``message``.

        Without a message the capability's ``default_input`` is the message; with neither, or an
        unknown capability, nothing starts (:class:`InputError`, :class:`NotFoundError`). A priced
        capability of another user starts only for its paid order ``order_id`` (the task's id).
        """
        if capability_id is None:
            if not message:
                raise InputError("a message is required: send one with text in it")
            request = TaskRequest(
                owner=owner, message=message, workspace_id=workspace_id, conversation_id=conversation_id
            )
        else:
            capability = await self._capabilities.get(owner, capability_id)
            if capability.sold_to(owner) and order_id is None:
                raise ConflictError(
                    f"capability {capability_id!r} has a price: order it (POST /api/v1/transactions)"
                )
            text = message or capability.default_input
            if not text:
                raise InputError(f"capability {capability_id!r} has no default input: send a message")
            request = capability.task_request(
                owner, text, conversation_id=conversation_id, workspace_id=workspace_id
            ).model_copy(update={"task_id": order_id})
        started = await self._starter.start(request)
        await self._origins.insert(started.record.id, surface, capability_id)
        return started

    async def origin(self, task_id: str) -> TaskOrigin | None:
        """How the task was started; None for a task started elsewhere (``POST /messages``)."""
        row = await self._origins.find(task_id)
        if row is None:
            return None
        surface = _STORED_NAMES.get(row.surface, row.surface)
        return TaskOrigin.model_validate({"surface": surface, "capability_id": row.capability_id})

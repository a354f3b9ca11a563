"""Orders of capabilities: a user pays another user's capability and it runs as the buyer's task.

An order's life::

    place ──► pending ──task started──► running ──task completed──► completed  (price paid to the owner)
                 │                         └──task failed/canceled──► failed / canceled (refunded)
                 └──the task could not start──► failed (refunded)

Placing holds the price in escrow from the buyer in the transaction that records the order (a
buyer short of it gets a 409 and nothing runs). The task then starts under the order's id, so the
order is followed, read and canceled as a task on every surface (A2A ``tasks/get``,
``tasks/sendSubscribe``, ``tasks/cancel``; ``GET /api/v1/tasks/{id}``).

The worker that ends the task, whichever it is (a task may wait in the queue and run on another
worker than the one that placed it), settles the order (:meth:`Orders.settle_finished`, called by
the task manager): one conditional update with the hold's release or refund
(:mod:`runtime.store.capability_orders`), so its money moves once. If the worker stops first, :meth:`Orders.reconcile` at the
next start-up settles every order left open from its task as recorded: a task that completed
before the stop still pays; one that was interrupted (failed at start-up) or never started is
refunded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from runtime.engine.events import RunCanceled, RunCompleted, RunFailed
from runtime.errors import AgentWorkerError, InputError, NotFoundError
from runtime.features.capabilities import Capabilities
from runtime.features.capability_runs import CapabilityRuns, Surface
from runtime.platform.money import CreditsOut
from runtime.store import Store
from runtime.store.capability_orders import OPEN_STATUSES, NewOrder, OrderRow, OrderStatus
from runtime.tasks.follow import FinalEvent, final_event
from runtime.tasks.manager import TaskManager
from runtime.tasks.requests import StartedTask
from runtime.workspaces.records import DEFAULT_WORKSPACE

__all__ = ["Order", "OrderPage", "OrderRequest", "Orders"]

log = structlog.get_logger(__name__)


class OrderRequest(BaseModel):
    """``POST /api/v1/transactions``: what to order, and what for."""

    model_config = ConfigDict(extra="forbid")

    capability_id: str = Field(min_length=1, max_length=64, description="A public capability's id.")
    message: str | None = Field(
        None, min_length=1, max_length=100_000, description="The input; omitted: its default_input."
    )
    demand_id: str | None = Field(None, max_length=200, description="Your reference, kept with the order.")
    context_id: str | None = Field(None, max_length=200, description="Your reference, kept with the order.")
    booked_hours: float | None = Field(None, ge=0, le=10_000, description="Kept with the order.")


class Order(BaseModel):
    """An order as its buyer and seller see it; ``id`` is also its task's id."""

    id: str
    status: OrderStatus = Field(description="pending, running, completed, failed or canceled.")
    capability_id: str
    amount: CreditsOut = Field(description="The price held in escrow, paid or refunded.")
    buyer: str
    seller: str
    task_id: str = Field(description="The task running the order (the same id).")
    demand_id: str | None
    context_id: str | None
    booked_hours: float | None
    reason: str | None = Field(description="Why it failed or was canceled.")
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, row: OrderRow) -> Order:
        return cls.model_validate({**row.model_dump(), "task_id": row.id})


class OrderPage(BaseModel):
    items: list[Order]
    total: int
    page: int
    page_size: int
    has_more: bool


class Orders:
    def __init__(
        self,
        store: Store,
        capabilities: Capabilities,
        runs: CapabilityRuns,
        tasks: TaskManager,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._orders = store.capability_orders
        self._capabilities = capabilities
        self._runs = runs
        self._tasks = tasks
        self._clock = clock

    async def start(
        self,
        user: str,
        capability_id: str,
        message: str | None,
        *,
        surface: Surface,
        conversation_id: str | None = None,
        workspace_id: str = DEFAULT_WORKSPACE,
    ) -> StartedTask:
        """Run a capability for ``user``: ordered (paid) when it is another user's priced one."""
        capability = await self._capabilities.get(user, capability_id)
        if capability.sold_to(user):
            _, started = await self.place(
                user,
                OrderRequest(capability_id=capability_id, message=message),
                surface=surface,
                conversation_id=conversation_id,
                workspace_id=workspace_id,
            )
            return started
        return await self._runs.start(
            user,
            capability_id,
            message,
            surface=surface,
            conversation_id=conversation_id,
            workspace_id=workspace_id,
        )

    async def place(
        self,
        buyer: str,
        request: OrderRequest,
        *,
        surface: Surface = "order",
        conversation_id: str | None = None,
        workspace_id: str = DEFAULT_WORKSPACE,
    ) -> tuple[Order, StartedTask]:
        """Hold the price, start the task under the order's id, and watch it to its end."""
        capability = await self._capabilities.get(buyer, request.capability_id)
        if capability.owner is None:
            raise InputError(f"capability {capability.id!r} is the worker's own and free: invoke it")
        if capability.owner == buyer:
            raise InputError(f"capability {capability.id!r} is yours: invoke it instead of ordering it")
        if not (request.message or capability.default_input):
            raise InputError(f"capability {capability.id!r} has no default input: send a message")
        now = self._clock()
        order = NewOrder(
            id=str(uuid.uuid4()),
            buyer=buyer,
            seller=capability.owner,
            capability_id=capability.id,
            amount=capability.price,
            demand_id=request.demand_id,
            context_id=request.context_id,
            booked_hours=request.booked_hours,
            created_at=now,
        )
        await self._orders.place(order)  # InsufficientFunds (409): nothing written, nothing runs
        try:
            started = await self._runs.start(
                buyer,
                capability.id,
                request.message,
                surface=surface,
                conversation_id=conversation_id,
                workspace_id=workspace_id,
                order_id=order.id,
            )
        except AgentWorkerError as e:
            # Nothing runs: the order fails and its price goes back, and the buyer is told why.
            await self._orders.settle(order.id, "failed", f"the task could not start: {e}", self._clock())
            raise type(e)(f"{e} (order {order.id} failed, its price refunded)") from e
        await self._orders.mark_running(order.id, self._clock())
        log.info("order_placed", order_id=order.id, buyer=buyer, seller=order.seller, amount=order.amount)
        return await self.get(buyer, order.id), started

    async def get(self, user: str, order_id: str) -> Order:
        """The order, for its buyer or seller; anyone else gets a :class:`NotFoundError`."""
        row = await self._orders.get(order_id)
        if row is None or user not in (row.buyer, row.seller):
            raise NotFoundError(f"transaction {order_id} not found")
        return Order.of(row)

    async def list_orders(self, user: str, page: int, page_size: int) -> OrderPage:
        rows, total = await self._orders.list_for(user, (page - 1) * page_size, page_size)
        return OrderPage(
            items=[Order.of(row) for row in rows],
            total=total,
            page=page,
            page_size=page_size,
            has_more=(page - 1) * page_size + len(rows) < total,
        )

    async def reconcile(self, grace: float = 0.0) -> int:
        """Settle the orders a stopped worker left open; how many. At start-up, and (several
        workers) after a dead worker's runs were ended. An order whose task runs, in any worker, is
        settled by the worker that ends it; one with no final event younger than ``grace`` seconds may be its worker's
        still starting the task (several workers: the lease's length)."""
        settled = 0
        now = self._clock()
        for row in await self._orders.unsettled():
            if await self._tasks.running(row.id):
                continue
            # None also when no task has this id: the worker stopped between paying and starting it.
            final = await final_event(self._tasks, row.id, within=0.0)
            if final is None and now - row.created_at < grace:
                continue
            if await self._settle(row.id, final):
                settled += 1
        if settled:
            log.warning("orders_reconciled", count=settled)
        return settled

    async def settle_finished(self, task_id: str) -> None:
        """Settle the order run by ``task_id`` if there is one still open (the task has just ended here)."""
        row = await self._orders.get(task_id)
        if row is None or row.status not in OPEN_STATUSES:
            return
        await self._settle(task_id, await final_event(self._tasks, task_id, within=0.0))

    async def _settle(self, order_id: str, final: FinalEvent | None) -> bool:
        status: Literal["completed", "failed", "canceled"]
        match final:
            case RunCompleted():
                status, reason = "completed", None
            case RunFailed():
                status, reason = "failed", f"the task failed: {final.error}"
            case RunCanceled():
                status, reason = "canceled", f"the task was canceled: {final.reason}"
            case _:
                status, reason = "failed", "the worker stopped before the task finished"
        settled = await self._orders.settle(order_id, status, reason, self._clock())
        log.info("order_settled", order_id=order_id, status=status, settled=settled)
        return settled

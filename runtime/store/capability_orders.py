"""Orders of priced capabilities: the ``capability_orders`` table, with the escrow of each.

An order's id is its task's id and its ledger hold's id. Placing an order inserts it and holds its
price in escrow in ONE transaction (a buyer short of the price raises the ledger's
``InsufficientFunds`` and nothing is written); settling it is a conditional UPDATE from an open
status composed with the hold's release (to the seller) or refund (to the buyer), so an order
ends once and its money moves once, whoever settles it (the worker that ends its task, a
lease sweep, or the start-up's reconcile).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import func, insert, or_, select, update

from runtime.store import platform_ledger as ledger
from runtime.store.database import Database
from runtime.store.schema import capability_orders as orders

__all__ = ["OPEN_STATUSES", "CapabilityOrderQueries", "NewOrder", "OrderRow", "OrderStatus"]

OrderStatus = Literal["pending", "running", "completed", "failed", "canceled"]
OPEN_STATUSES: tuple[OrderStatus, ...] = ("pending", "running")


class NewOrder(BaseModel):
    id: str
    buyer: str
    seller: str
    capability_id: str
    amount: int  # cents
    demand_id: str | None = None
    context_id: str | None = None
    booked_hours: float | None = None
    created_at: float


class OrderRow(NewOrder):
    status: OrderStatus
    reason: str | None
    updated_at: float


class CapabilityOrderQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def place(self, order: NewOrder) -> None:
        """Insert the order (pending) with its price in escrow from the buyer, in one transaction."""
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(orders).values(**order.model_dump(), status="pending", updated_at=order.created_at)
            )
            if order.amount > 0:
                await ledger.open_hold(conn, order.id, order.buyer, order.amount)

    async def mark_running(self, order_id: str, now: float) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(orders)
                .where(orders.c.id == order_id, orders.c.status == "pending")
                .values(status="running", updated_at=now)
            )
        return bool(result.rowcount)

    async def settle(
        self,
        order_id: str,
        status: Literal["completed", "failed", "canceled"],
        reason: str | None,
        now: float,
    ) -> bool:
        """End an open order: completed pays the seller, failed/canceled refunds the buyer; False if
        it had ended already (nothing moves)."""
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == order_id, orders.c.status.in_(OPEN_STATUSES))
                    .values(status=status, reason=reason, updated_at=now)
                    .returning(orders.c.seller, orders.c.amount)
                )
            ).first()
            if row is None:
                return False
            if int(row.amount) > 0:
                outcome: Literal["release", "refund"] = "release" if status == "completed" else "refund"
                await ledger.settle_hold(conn, order_id, outcome, str(row.seller))
            return True

    async def get(self, order_id: str) -> OrderRow | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
        return None if row is None else OrderRow.model_validate(row._mapping)

    async def list_for(self, node: str, offset: int, limit: int) -> tuple[list[OrderRow], int]:
        """The orders ``node`` bought or sold, newest first, and how many there are."""
        mine = or_(orders.c.buyer == node, orders.c.seller == node)
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(orders)
                .where(mine)
                .order_by(orders.c.created_at.desc(), orders.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
            items = [OrderRow.model_validate(row._mapping) for row in rows]
            total = (await conn.execute(select(func.count()).select_from(orders).where(mine))).scalar_one()
        return items, int(total)

    async def unsettled(self) -> list[OrderRow]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(orders).where(orders.c.status.in_(OPEN_STATUSES)).order_by(orders.c.created_at)
            )
            return [OrderRow.model_validate(row._mapping) for row in rows]

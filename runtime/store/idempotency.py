"""Idempotency keys: the ``idempotency_keys`` table (the rules are :mod:`runtime.features.idempotency`'s)."""

from __future__ import annotations

import time

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, or_, select, update

from runtime.store.database import Database
from runtime.store.dialects import upsert
from runtime.store.schema import idempotency_keys as keys
from runtime.store.schema import worker_instances

__all__ = ["IN_FLIGHT", "IdempotencyQueries", "KeyRow"]

IN_FLIGHT = "in_flight"
DONE = "done"


class KeyRow(BaseModel):
    fingerprint: str
    state: str
    status: int | None
    content_type: str | None
    body: bytes | None
    reason: str | None


class IdempotencyQueries:
    def __init__(self, db: Database, instance: str | None = None) -> None:
        self._db = db
        self._instance = instance  # the worker whose in-flight keys these are (see interrupt_in_flight)

    def _key(self, owner: str, scope: str, key: str) -> list[ColumnElement[bool]]:
        return [keys.c.owner == owner, keys.c.scope == scope, keys.c.key == key]

    async def claim(
        self, owner: str, scope: str, key: str, fingerprint: str, now: float, expires_at: float
    ) -> bool:
        """Claim a new key, or take over an expired one, in one statement (``ON CONFLICT``).

        Two concurrent claims cannot both win on either engine: the loser's conflicting insert
        waits for the winner's row and then finds it in flight. A key in flight never expires.
        """
        statement = upsert(self._db, keys).values(
            owner=owner,
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state=IN_FLIGHT,
            created_at=now,
            expires_at=expires_at,
            worker_id=self._instance,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["owner", "scope", "key"],
            set_={
                "fingerprint": statement.excluded.fingerprint,
                "state": statement.excluded.state,
                "status": None,
                "content_type": None,
                "body": None,
                "reason": None,
                "created_at": statement.excluded.created_at,
                "expires_at": statement.excluded.expires_at,
                "worker_id": statement.excluded.worker_id,
            },
            where=(keys.c.state != IN_FLIGHT) & (keys.c.expires_at <= now),
        ).returning(keys.c.key)
        async with self._db.connect() as conn:
            return (await conn.execute(statement)).first() is not None

    async def find(self, owner: str, scope: str, key: str) -> KeyRow | None:
        query = select(
            keys.c.fingerprint, keys.c.state, keys.c.status, keys.c.content_type, keys.c.body, keys.c.reason
        ).where(*self._key(owner, scope, key))
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else KeyRow.model_validate(row._mapping)

    async def finish(
        self,
        owner: str,
        scope: str,
        key: str,
        *,
        status: int | None,
        content_type: str | None,
        body: bytes | None,
        reason: str | None,
        expires_at: float,
    ) -> None:
        """The key's first request answered: keep the answer (or why there is none) until ``expires_at``."""
        async with self._db.connect() as conn:
            await conn.execute(
                update(keys)
                .where(*self._key(owner, scope, key), keys.c.state == IN_FLIGHT)
                .values(
                    state=DONE,
                    status=status,
                    content_type=content_type,
                    body=body,
                    reason=reason,
                    expires_at=expires_at,
                )
            )

    async def release(self, owner: str, scope: str, key: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(delete(keys).where(*self._key(owner, scope, key), keys.c.state == IN_FLIGHT))

    async def interrupt_in_flight(self, reason: str, expires_at: float) -> int:
        """Close the keys left in flight by this instance's last process, by no worker (written
        before leases), or by a worker whose lease has expired; never a live worker's."""
        live = select(worker_instances.c.id).where(worker_instances.c.lease_expires_at >= time.time())
        left = or_(
            keys.c.worker_id.is_(None), keys.c.worker_id == self._instance, keys.c.worker_id.not_in(live)
        )
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(keys)
                .where(keys.c.state == IN_FLIGHT, left)
                .values(state=DONE, reason=reason, expires_at=expires_at)
            )
        return int(result.rowcount)

    async def purge_expired(self, now: float) -> int:
        async with self._db.connect() as conn:
            result = await conn.execute(
                delete(keys).where(keys.c.state != IN_FLIGHT, keys.c.expires_at <= now)
            )
        return int(result.rowcount)

    async def keys(self) -> list[str]:
        """Every stored key (tests read what is kept)."""
        async with self._db.connect() as conn:
            return list((await conn.execute(select(keys.c.key).order_by(keys.c.key))).scalars())

"""Worker instances sharing one database, their leases, and the secrets they share.

Each worker process has a row in ``worker_instances`` (its ``AGENT_INSTANCE_ID``) whose lease it
renews with every heartbeat. An active run names the instance running it (``runs.worker_id``), so
the run's lease is its worker's: one statement a heartbeat renews them all, however many tasks the
worker runs. Once a lease has expired, any other worker may end that instance's runs
(:meth:`runtime.store.runs_events.RunEvents.fail_interrupted_runs`), remove its containers and then
its row (:meth:`WorkerQueries.forget`).
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select, update

from runtime.store.database import Database
from runtime.store.dialects import upsert
from runtime.store.schema import shared_secrets, worker_instances

__all__ = ["SharedSecrets", "WorkerQueries"]


class WorkerQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def beat(self, instance_id: str, lease: float, *, starting: bool = False) -> bool:
        """Renew ``instance_id``'s lease for ``lease`` seconds (its row made if absent); whether
        it still held its lease (False: it had expired or was gone, so other workers may have ended
        its runs meanwhile).

        ``starting``: a new process of this instance; its start time is reset.
        """
        now = time.time()
        if not starting:
            async with self._db.connect() as conn:
                renewed_rows = await conn.execute(
                    update(worker_instances)
                    .where(worker_instances.c.id == instance_id, worker_instances.c.lease_expires_at >= now)
                    .values(heartbeat_at=now, lease_expires_at=now + lease)
                    .returning(worker_instances.c.id)
                )
                if renewed_rows.first() is not None:
                    return True
        statement = upsert(self._db, worker_instances).values(
            id=instance_id, started_at=now, heartbeat_at=now, lease_expires_at=now + lease
        )
        renewed = {"heartbeat_at": now, "lease_expires_at": now + lease}
        if starting:
            renewed["started_at"] = now
        async with self._db.connect() as conn:
            await conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=renewed))
        return starting

    async def expired(self, now: float | None = None) -> list[str]:
        """The instances whose lease has expired, oldest first."""
        moment = time.time() if now is None else now
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(worker_instances.c.id)
                .where(worker_instances.c.lease_expires_at < moment)
                .order_by(worker_instances.c.lease_expires_at)
            )
            return list(found.scalars())

    async def live(self, now: float | None = None) -> list[str]:
        """The instances holding a lease now."""
        moment = time.time() if now is None else now
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(worker_instances.c.id)
                .where(worker_instances.c.lease_expires_at >= moment)
                .order_by(worker_instances.c.id)
            )
            return list(found.scalars())

    async def forget(self, instance_id: str, *, only_expired: bool = True) -> None:
        """Remove the instance's row (a worker leaving, or one whose lease expired and was cleaned up).

        ``only_expired``: not if it renewed its lease meanwhile (a worker that was only slow).
        """
        statement = delete(worker_instances).where(worker_instances.c.id == instance_id)
        if only_expired:
            statement = statement.where(worker_instances.c.lease_expires_at < time.time())
        async with self._db.connect() as conn:
            await conn.execute(statement)


class SharedSecrets:
    """Secrets every worker of the database must agree on (signing keys), made once."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def ensure(self, name: str, candidate: bytes) -> bytes:
        """The secret called ``name``; ``candidate`` becomes it if there is none yet.

        ``ON CONFLICT DO NOTHING`` then a read: two workers starting at once agree on the first.
        """
        statement = upsert(self._db, shared_secrets).values(
            name=name, value=candidate, created_at=time.time()
        )
        async with self._db.connect() as conn:
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
            found = await conn.execute(select(shared_secrets.c.value).where(shared_secrets.c.name == name))
            return bytes(found.scalar_one())

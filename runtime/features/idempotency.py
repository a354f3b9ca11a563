"""Idempotency keys: work sent again under the same key runs once.

The rules of the IETF draft (draft-ietf-httpapi-idempotency-key-header) and of Stripe, for any
caller that has a key: the ``Idempotency-Key`` header middleware (``api.web.idempotency``) and a
request body's own ``idempotency_key``, each in its own ``scope``. A caller::

    stored = await keys.begin(owner, key, fingerprint(method, path, body))
    if stored is not None:
        return stored                  # the first answer, replayed; nothing runs again
    ...run the work...
    await keys.complete(owner, key, StoredResponse(...))          # or, if nothing can be replayed:
    await keys.complete_without_response(owner, key, "why not")   # a stream, an interruption
    await keys.release(owner, key)     # instead, when the work failed before doing anything

:meth:`IdempotencyStore.begin` refuses the same key with another fingerprint
(:class:`UnprocessableError`, 422) and a key whose first request is still running or whose answer
cannot be replayed (:class:`ConflictError`, 409). Keys are per owner and scope, and are kept for
``ttl`` seconds after the first request was answered; an expired key is free again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from pydantic import BaseModel

from runtime.errors import ConflictError, InputError, UnprocessableError
from runtime.store import Store
from runtime.store.idempotency import IN_FLIGHT

__all__ = [
    "HEADER_SCOPE",
    "INTERRUPTED",
    "MAX_KEY_LENGTH",
    "IdempotencyStore",
    "StoredResponse",
    "check_key",
    "fingerprint",
]

HEADER_SCOPE = "header"  # keys sent as the Idempotency-Key header
MAX_KEY_LENGTH = 255

INTERRUPTED = (
    "the first request with this idempotency key was interrupted (the worker stopped) before it "
    "answered; it will not run again under this key: check its effect, then use a new key"
)


class StoredResponse(BaseModel):
    """The first answer, replayed to every retry."""

    status: int
    content_type: str
    body: bytes


def check_key(key: str) -> str:
    """The key if it is 1 to 255 printable ASCII characters; else :class:`InputError`."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise InputError(f"an idempotency key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def fingerprint(*parts: bytes | str) -> str:
    """A digest of what makes two requests the same (e.g. method, path, body)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))  # length-prefixed: ("ab", "c") != ("a", "bc")
        digest.update(data)
    return digest.hexdigest()


class IdempotencyStore:
    """The ``idempotency_keys`` table of the store."""

    def __init__(self, store: Store, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._rows = store.idempotency
        self._ttl = ttl
        self._clock = clock

    async def begin(
        self, owner: str, key: str, fingerprint: str, *, scope: str = HEADER_SCOPE
    ) -> StoredResponse | None:
        """Claims the key (None: run the work, then complete or release it) or returns its answer.

        Raises :class:`UnprocessableError` when the key was used with another fingerprint and
        :class:`ConflictError` while its first request runs or when its answer cannot be replayed.
        """
        now = self._clock()
        # One statement claims a new key or takes over an expired one, so two concurrent requests
        # cannot both claim it; a key still in flight never expires from under its request.
        if await self._rows.claim(owner, scope, key, fingerprint, now, now + self._ttl):
            return None
        row = await self._rows.find(owner, scope, key)
        if row is None:  # released between the two statements: claim it now
            return await self.begin(owner, key, fingerprint, scope=scope)
        if row.fingerprint != fingerprint:
            raise UnprocessableError(
                "this idempotency key was already used for a different request (method, path or "
                "body); send a new key for a new request"
            )
        if row.state == IN_FLIGHT:
            raise ConflictError(
                "a request with this idempotency key is still being processed; retry after it has answered"
            )
        if row.status is None or row.content_type is None or row.body is None:
            raise ConflictError(row.reason)
        return StoredResponse(status=row.status, content_type=row.content_type, body=row.body)

    async def complete(
        self, owner: str, key: str, response: StoredResponse, *, scope: str = HEADER_SCOPE
    ) -> None:
        """Stores the first answer; retries get it back until the key expires."""
        await self._rows.finish(
            owner,
            scope,
            key,
            status=response.status,
            content_type=response.content_type,
            body=response.body,
            reason=None,
            expires_at=self._clock() + self._ttl,
        )

    async def complete_without_response(
        self, owner: str, key: str, reason: str, *, scope: str = HEADER_SCOPE
    ) -> None:
        """The work ran but its answer cannot be replayed (a stream): retries get a 409 with ``reason``."""
        await self._rows.finish(
            owner,
            scope,
            key,
            status=None,
            content_type=None,
            body=None,
            reason=reason,
            expires_at=self._clock() + self._ttl,
        )

    async def release(self, owner: str, key: str, *, scope: str = HEADER_SCOPE) -> None:
        """Frees a key whose work did nothing (refused, or failed with a 5xx): it may be sent again."""
        await self._rows.release(owner, scope, key)

    async def interrupt_in_flight(self) -> int:
        """Keys a previous process of this worker, or a dead worker, left in flight end as
        interrupted (never run again): at start-up, and periodically for workers that died since."""
        return await self._rows.interrupt_in_flight(INTERRUPTED, self._clock() + self._ttl)

    async def purge_expired(self) -> int:
        """Deletes expired keys (an expired key is free either way); returns how many."""
        return await self._rows.purge_expired(self._clock())

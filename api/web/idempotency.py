"""The ``Idempotency-Key`` header on every POST / PUT / PATCH, on every surface.

The first answer to a key is stored with a fingerprint of the request (method, path with query,
body) and replayed, with ``Idempotent-Replayed: true``, to a retry that sends the same key and
request; :mod:`runtime.features.idempotency` has the rules (422 for another request under the key, 409 while
the first runs). What is stored:

- a complete answer under 500: status, body and content type;
- a streamed answer (SSE: A2A ``tasks/sendSubscribe`` / ``message/stream``, MCP streams): the
  work ran and its stream cannot be replayed, so a retry gets a 409 saying so, never a second run;
- nothing for a 5xx answer or an error raised before the work did anything (400, 404, 409, ...):
  the key is released, and the same key may be sent again;
- an interrupted request (the worker stopped under it) keeps the key, answered by a 409.

A multipart body (file upload) is streamed to disk, never buffered, so it is not fingerprinted and
the key is ignored; an upload replaces the file of the same name, so repeating it is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api.web.keys import IDEMPOTENCY, USER
from runtime.errors import InputError
from runtime.features.idempotency import INTERRUPTED, IdempotencyStore, StoredResponse, check_key, fingerprint
from runtime.store import Store

__all__ = ["REPLAYED_HEADER", "idempotency_keys", "idempotency_middleware", "setup_idempotency"]

log = structlog.get_logger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"
_STREAMED = (
    "the request with this idempotency key was answered with a stream, which cannot be replayed; "
    "it ran once and will not run again under this key: send a new key to run it again"
)
_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PURGE_INTERVAL = 3600.0


@dataclass
class _Claim:
    streamed: bool = False  # the response's headers went out while the handler ran


_CLAIM = web.RequestKey("idempotency_claim", _Claim)


def setup_idempotency(app: web.Application) -> None:
    """Before start-up; the key store itself is opened with :func:`idempotency_keys`."""
    app.on_response_prepare.append(_mark_streamed)


@asynccontextmanager
async def idempotency_keys(store: Store, ttl: float) -> AsyncIterator[IdempotencyStore]:
    """The key store: keys left in flight closed at start-up, expired ones purged periodically."""
    keys = IdempotencyStore(store, ttl)
    interrupted = await keys.interrupt_in_flight()
    if interrupted:
        log.warning("idempotency_keys_interrupted", count=interrupted)
    purger = asyncio.create_task(_purge(keys, min(ttl, _PURGE_INTERVAL)))
    try:
        yield keys
    finally:
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purger


async def _purge(keys: IdempotencyStore, interval: float) -> None:
    while True:
        try:
            purged = await keys.purge_expired()
        except Exception:  # logged and tried again: an expired key is free whether purged or not
            log.exception("idempotency_purge_failed")
        else:
            if purged:
                log.info("idempotency_keys_purged", count=purged)
        await asyncio.sleep(interval)


def _header_key(request: web.Request) -> str | None:
    values = request.headers.getall("Idempotency-Key", [])
    if not values:
        return None
    if len(values) > 1:
        raise InputError("send one Idempotency-Key header, not several")
    key = values[0]
    if len(key) >= 2 and key[0] == key[-1] == '"':  # the draft's sf-string form: "key"
        key = key[1:-1]
    return check_key(key)


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in _METHODS or USER not in request or request.content_type.startswith("multipart/"):
        return await handler(request)
    key = _header_key(request)
    if key is None:
        return await handler(request)
    user, keys = request[USER], request.app[IDEMPOTENCY]
    body = await request.read()  # cached: the handler reads the same bytes
    stored = await keys.begin(user, key, fingerprint(request.method, request.path_qs, body))
    if stored is not None:
        return web.Response(
            status=stored.status,
            body=stored.body,
            headers={"Content-Type": stored.content_type, REPLAYED_HEADER: "true"},
        )
    claim = request[_CLAIM] = _Claim()
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        # The worker is stopping under the request; shielded, so the key does not stay in flight.
        reason = _STREAMED if claim.streamed else INTERRUPTED
        await asyncio.shield(keys.complete_without_response(user, key, reason))
        raise
    except Exception:
        if claim.streamed:  # the work ran, and its stream broke off (the client left)
            await keys.complete_without_response(user, key, _STREAMED)
        else:  # refused (4xx) or failed (5xx): the error middleware answers, the key is free again
            await keys.release(user, key)
        raise
    await _record(keys, user, key, response, claim)
    return response


async def _record(
    keys: IdempotencyStore, user: str, key: str, response: web.StreamResponse, claim: _Claim
) -> None:
    body = response.body if isinstance(response, web.Response) else None
    if claim.streamed or response.prepared or not isinstance(body, bytes):
        await keys.complete_without_response(user, key, _STREAMED)
    elif response.status >= 500:
        await keys.release(user, key)
    else:
        content_type = response.headers.get("Content-Type", response.content_type)
        await keys.complete(
            user, key, StoredResponse(status=response.status, content_type=content_type, body=body)
        )


async def _mark_streamed(request: web.BaseRequest, response: web.StreamResponse) -> None:
    claim = request.get(_CLAIM)
    if claim is not None:
        claim.streamed = True

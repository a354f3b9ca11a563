"""The recommendation feed's cursor: opaque, signed, bound to its caller and the ranking.

A cursor is ``<payload>.<signature>``, both base64url: the payload is the place the next page
starts from (the tier and the last item's key), the caller it was given to, a digest of the
capabilities the caller's ranking matched, and the ranking's version; the signature is an
HMAC-SHA256 of the payload with a server secret. A cursor that was altered, made up, given to
another caller, or made for another ranking (another version, or the caller's capabilities have
changed since: its items would come in another order) is refused with :class:`CursorError`, so a
walk never shows an item twice. The secret is a file in the data directory, created on first use,
so cursors survive a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ValidationError

from runtime.errors import InputError
from runtime.store.platform_feed import FeedKey

__all__ = ["RANKING_VERSION", "CursorError", "CursorSigner", "FeedPosition", "load_secret", "matched_digest"]

RANKING_VERSION = 1
"""Raise it when the order changes: cursors of the old order are refused, never misread."""

_SECRET_BYTES = 32


class CursorError(InputError):
    """A cursor this server did not give to this caller for this ranking (a 400)."""


class FeedPosition(BaseModel):
    tier: int  # 0: items matching the caller's capabilities; 1: the others
    key: FeedKey | None  # the last item shown; None: the tier's start


class _Payload(BaseModel):
    v: int
    user: str
    matched: str
    tier: int
    key: FeedKey | None


def load_secret(path: Path) -> bytes:
    """The secret in ``path``, created (readable by this user only) when there is none yet."""
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker on this data directory made it first
            return path.read_bytes()
        secret = secrets.token_bytes(_SECRET_BYTES)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
    if len(secret) < _SECRET_BYTES:
        raise ValueError(f"{path} holds {len(secret)} bytes; a cursor secret needs {_SECRET_BYTES}")
    return secret


def matched_digest(capabilities: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(capabilities)).encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def encode(self, user: str, capabilities: list[str], position: FeedPosition) -> str:
        body = _Payload(
            v=RANKING_VERSION,
            user=user,
            matched=matched_digest(capabilities),
            tier=position.tier,
            key=position.key,
        )
        payload = _b64(body.model_dump_json().encode())
        return f"{payload}.{self._sign(payload)}"

    def decode(self, cursor: str, user: str, capabilities: list[str]) -> FeedPosition:
        payload, _, signature = cursor.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise CursorError("invalid cursor: it was not issued by this server; start without one")
        try:
            body = _Payload.model_validate(json.loads(_unb64(payload)))
        except (ValueError, ValidationError):
            raise CursorError("invalid cursor; start without one") from None
        if body.user != user:
            raise CursorError("invalid cursor: it was issued to another caller")
        if body.v != RANKING_VERSION or body.matched != matched_digest(capabilities):
            raise CursorError("stale cursor: the feed's ranking changed since; start again without one")
        return FeedPosition(tier=body.tier, key=body.key)

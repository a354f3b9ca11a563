"""The web console's session cookie: an API key a browser presents instead of a header.

The cookie holds a random per-session nonce and the key (``<nonce>.<base64url key>``), is
``HttpOnly`` (page scripts never read the key), ``SameSite=Strict`` (other sites' requests never
carry it), ``Secure`` when the worker is reached over https, and lives until the browser closes or
the user signs out.

A request authenticated by the cookie and using an unsafe method must also send the session's
CSRF token in the ``X-CSRF-Token`` header: HMAC-SHA256 of the nonce keyed by the API key. Why
derived, not stored: it needs no server-side session table, holds across restarts and workers
sharing a database, and only someone who holds the key (or reads a console page, which only the
key's browser can) can compute it. A request with an ``Authorization`` or ``X-Api-Key`` header
never looks at the cookie, so header-based clients see no change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "MAX_KEY_CHARS",
    "SAFE_METHODS",
    "ConsoleSession",
    "clear_session_cookie",
    "read_session",
    "set_session_cookie",
]

COOKIE_NAME = "agent_worker_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_KEY_CHARS = 512
"""Longest API key the sign-in form accepts (keys we issue are far shorter)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_CONTEXT = b"agent-worker console csrf v1:"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ConsoleSession:
    """The API key a browser signed in with, and the nonce its CSRF token is derived from."""

    key: str
    nonce: str

    @classmethod
    def new(cls, key: str) -> ConsoleSession:
        return cls(key=key, nonce=secrets.token_urlsafe(18))

    @property
    def csrf_token(self) -> str:
        return _b64(hmac.new(self.key.encode(), _CSRF_CONTEXT + self.nonce.encode(), hashlib.sha256).digest())

    def accepts(self, token: str | None) -> bool:
        """True when ``token`` is this session's CSRF token (compared in constant time)."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf_token.encode())

    def cookie_value(self) -> str:
        return f"{self.nonce}.{_b64(self.key.encode())}"


def read_session(request: web.BaseRequest) -> ConsoleSession | None:
    """The session the request's cookie carries; None without one or when it is malformed."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw or len(raw) > 2 * MAX_KEY_CHARS:
        return None
    nonce, _, encoded = raw.partition(".")
    try:
        key = _unb64(encoded).decode()
    except (binascii.Error, ValueError):
        return None
    if not nonce or not key or len(key) > MAX_KEY_CHARS:
        return None
    return ConsoleSession(key=key, nonce=nonce)


def set_session_cookie(response: web.StreamResponse, session: ConsoleSession, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE_NAME, session.cookie_value(), path="/", httponly=True, samesite="Strict", secure=secure
    )


def clear_session_cookie(response: web.StreamResponse, *, secure: bool) -> None:
    response.del_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict", secure=secure)

"""Token authentication: each configured token maps to one API user.

The token comes as ``Authorization: Bearer <token>`` or, as API-key clients send it, as
``X-Api-Key: <token>``; if both are sent they must name the same user. ``X-Platform-User-Id`` (sent
by the same clients) is optional; when sent it must be the token's user, else the request is refused, so a client
configured with one user's id and another user's key fails loudly instead of acting as someone else.

Without configured tokens every request is the user ``anonymous`` and these headers are ignored;
the CLI only allows that on a loopback address unless ``--allow-anonymous`` is given.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from api.web.errors import UnauthorizedError
from api.web.keys import SETTINGS, USER

__all__ = ["ANONYMOUS", "PUBLIC_PATHS", "USER_ID_HEADER", "auth_middleware", "is_public"]

ANONYMOUS = "anonymous"
# The agent card is public by the A2A spec: clients read it to learn how to authenticate.
PUBLIC_PATHS = frozenset(
    {"/", "/health", "/openapi.json", "/.well-known/agent-card.json", "/.well-known/agent.json"}
)
API_KEY_HEADER = "X-Api-Key"
USER_ID_HEADER = "X-Platform-User-Id"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == "/docs" or path.startswith("/docs/")


def _user_for(token: str, tokens: dict[str, str]) -> str | None:
    # Compare against every token so the time taken does not tell which prefix matched.
    found = None
    for known, user in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = user
    return found


def _presented_tokens(request: web.Request) -> list[str]:
    presented = []
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        presented.append(bearer.strip())
    api_key = request.headers.get(API_KEY_HEADER, "").strip()
    if api_key:
        presented.append(api_key)
    if not presented:
        raise UnauthorizedError(
            f"missing credentials: send Authorization: Bearer <token> or {API_KEY_HEADER}: <token>"
        )
    return presented


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[SETTINGS].tokens
    if not tokens:
        request[USER] = ANONYMOUS
        return await handler(request)
    if is_public(request.path):
        return await handler(request)
    users = {_user_for(token, tokens) for token in _presented_tokens(request)}
    if None in users:
        raise UnauthorizedError("invalid token")
    if len(users) > 1:
        raise UnauthorizedError(f"Authorization and {API_KEY_HEADER} name different users")
    user = users.pop()
    assert user is not None
    claimed = request.headers.get(USER_ID_HEADER)
    if claimed is not None and claimed.strip() != user:
        raise UnauthorizedError(f"{USER_ID_HEADER} is not the user of this token")
    request[USER] = user
    return await handler(request)

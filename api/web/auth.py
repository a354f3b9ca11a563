"""Token authentication: each configured token maps to one API user.

The token comes as ``Authorization: Bearer <token>`` or, as API-key clients send it, as
``X-Api-Key: <token>``; if both are sent they must name the same user. Without either header, the web
console's session cookie (:mod:`api.web.session`) carries the token; a request it authenticates
with an unsafe method must send the session's CSRF token too, else it is refused (403). ``X-Platform-User-Id`` (sent
by the same clients) is optional; when sent it must be the token's user, else the request is refused, so a client
configured with one user's id and another user's key fails loudly instead of acting as someone else.

A token is looked up in ``AGENT_API_KEYS`` first, then among the API keys nodes of the agent
platform got on ``/v1/auth/register`` or ``/v1/auth/login`` (stored as SHA-256 digests): such a key
is a user of the whole worker, named by its node id, exactly like a configured token.

Without configured tokens every request is the user ``anonymous`` and unknown tokens are ignored
(a platform key still names its node); the CLI only allows that on a loopback address unless
``--allow-anonymous`` is given. The agent platform (``/v1``) never has an anonymous user: its
routes need a key, except the public ones.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from api.web.errors import UnauthorizedError
from api.web.keys import ACCOUNTS, SETTINGS, USER
from api.web.session import CSRF_HEADER, SAFE_METHODS, read_session
from runtime.errors import ForbiddenError

__all__ = [
    "ANONYMOUS",
    "PUBLIC_PATHS",
    "USER_ID_HEADER",
    "auth_middleware",
    "is_public",
    "public_request",
    "user_of_token",
]

ANONYMOUS = "anonymous"
# The agent card is public by the A2A spec: clients read it to learn how to authenticate.
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/health",
        "/ready",
        "/openapi.json",
        "/.well-known/agent-card.json",
        "/.well-known/agent.json",
        "/v1/status",
        "/v1/auth/register",
        "/v1/auth/login",
        "/api/v1/public/community-stats",
        "/api/v1/public/openapi.json",
        # The console's sign-in and sign-out check their own form (api/console/signin.py).
        "/console/signin",
        "/console/signout",
    }
)
PLATFORM_PREFIX = "/v1/"
API_KEY_HEADER = "X-Api-Key"
USER_ID_HEADER = "X-Platform-User-Id"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == "/docs" or path.startswith(("/docs/", "/console/static/"))


def public_request(request: web.Request) -> bool:
    """A request that needs no key: a public path, or /metrics when AGENT_METRICS_PUBLIC is set."""
    return is_public(request.path) or (request.path == "/metrics" and request.app[SETTINGS].metrics_public)


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
    return presented


async def user_of_token(app: web.Application, token: str) -> str | None:
    """The user a token names (a configured token, else a platform node's key); None if unknown."""
    user = _user_for(token, app[SETTINGS].tokens)
    if user is None and ACCOUNTS in app:  # the platform's keys, once start-up made its accounts
        user = await app[ACCOUNTS].node_of_key(token)
    return user


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[SETTINGS].tokens
    anonymous_allowed = not tokens and not request.path.startswith(PLATFORM_PREFIX)
    if public_request(request):
        if not tokens:
            request[USER] = ANONYMOUS
        return await handler(request)
    presented = _presented_tokens(request)
    session = None if presented else read_session(request)
    if session is not None:
        presented = [session.key]
    if not presented:
        if anonymous_allowed:
            request[USER] = ANONYMOUS
            return await handler(request)
        raise UnauthorizedError(
            f"missing credentials: send Authorization: Bearer <token> or {API_KEY_HEADER}: <token>"
        )
    users = {await user_of_token(request.app, token) for token in presented}
    if None in users:
        if anonymous_allowed:
            request[USER] = ANONYMOUS
            return await handler(request)
        raise UnauthorizedError("invalid token")
    if len(users) > 1:
        raise UnauthorizedError(f"Authorization and {API_KEY_HEADER} name different users")
    user = users.pop()
    assert user is not None
    claimed = request.headers.get(USER_ID_HEADER)
    if claimed is not None and claimed.strip() != user:
        raise UnauthorizedError(f"{USER_ID_HEADER} is not the user of this token")
    if (
        session is not None
        and request.method not in SAFE_METHODS
        and not session.accepts(request.headers.get(CSRF_HEADER))
    ):
        raise ForbiddenError(f"missing or wrong {CSRF_HEADER} header for this console session")
    request[USER] = user
    return await handler(request)

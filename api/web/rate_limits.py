"""Rate limits on every request: per API user, and per client address on the public endpoints.

Runs after authentication, so a request is charged to the user its token names (every caller is
the one user ``anonymous`` when no tokens are configured). ``/``, ``/health``, ``/openapi.json``
and ``/docs`` need no token and are charged to the client's address, under stricter limits; the
address is the TCP peer's unless ``AGENT_TRUSTED_PROXY_HOPS`` says how many proxies append to
``X-Forwarded-For``.

Every response the limiter saw carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (draft-ietf-httpapi-ratelimit-headers-06: the minute's quota, the requests left,
seconds until the quota is whole again); a refusal is a 429 with ``Retry-After`` in the envelope of
the surface it hit. A request holds one concurrency slot until its handler returns, so an open SSE
stream or long poll holds one for as long as it is open. The web console's own CSS and JS files
(``/console/static/``) are not limited: served from memory and cached by browsers for a year, they
cost nothing to serve, and a page fetching several at once must not trip its address's limit.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from api.web.auth import public_request
from api.web.errors import TooManyRequestsError
from api.web.keys import PUBLIC_RATE_LIMITER, SETTINGS, USER, USER_RATE_LIMITER
from runtime.features.rate_limits import Admission, RateLimiter

__all__ = ["client_address", "rate_limit_middleware", "setup_rate_limits"]

_HEADERS = web.RequestKey("rate_limit_headers", dict[str, str])


def setup_rate_limits(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[USER_RATE_LIMITER] = RateLimiter(settings.user_rate_limit())
    app[PUBLIC_RATE_LIMITER] = RateLimiter(settings.public_rate_limit())
    app.on_response_prepare.append(_add_headers)


def client_address(request: web.Request, trusted_hops: int) -> str:
    """The client's address: the peer's, or the one the outermost trusted proxy saw."""
    if trusted_hops:
        hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", ()) for h in v.split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= trusted_hops:  # fewer: the request did not come through every proxy
            return hops[-trusted_hops]
    return request.remote or "unknown"


def _headers(admission: Admission) -> dict[str, str]:
    headers = {}
    if admission.quota is not None:
        headers = {
            "RateLimit-Limit": str(admission.quota.limit),
            "RateLimit-Remaining": str(admission.quota.remaining),
            "RateLimit-Reset": str(admission.quota.reset),
        }
    if admission.refused:
        headers["Retry-After"] = str(admission.retry_after)
    return headers


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/console/static/"):
        return await handler(request)
    limiter: RateLimiter
    if public_request(request):
        limiter = request.app[PUBLIC_RATE_LIMITER]
        client = "ip:" + client_address(request, request.app[SETTINGS].trusted_proxy_hops)
    else:
        limiter, client = request.app[USER_RATE_LIMITER], "user:" + request[USER]
    admission = limiter.admit(client)
    request[_HEADERS] = _headers(admission)
    if admission.refused:
        raise TooManyRequestsError(f"{admission.refused}; retry after {admission.retry_after} s")
    try:
        return await handler(request)
    finally:
        limiter.release(client)


async def _add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    # A signal, not the middleware: it also reaches streamed responses and the error middleware's.
    response.headers.update(request.get(_HEADERS, {}))

"""``POST /v1/auth/register`` and ``POST /v1/auth/login``: how a node gets an API key (no key needed).

Registration is refused (403) unless the operator set ``AGENT_REGISTRATION=open``, and limited per
client address (``AGENT_REGISTRATIONS_PER_DAY``) on top of the public endpoints' per-minute limit.
"""

from __future__ import annotations

from aiohttp import web

from api.platform.envelope import add_route, ok
from api.web.errors import UnauthorizedError, error_response
from api.web.http import parse_body
from api.web.keys import ACCOUNTS, REGISTRATIONS, SETTINGS
from api.web.openapi import OpenAPIRegistry
from api.web.rate_limits import client_address
from runtime.platform.accounts import Credentials, Login, Registration
from runtime.platform.daily_limit import DailyLimit

__all__ = ["setup_auth_routes"]


async def register(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    body = await parse_body(request, Registration)
    if accounts.registration_open:
        address = client_address(request, request.app[SETTINGS].trusted_proxy_hops)
        wait = request.app[REGISTRATIONS].take(address)
        if wait is not None:
            per_day = request.app[SETTINGS].registrations_per_day
            reason = f"registration limit reached: at most {per_day} a day from one address"
            return error_response(request, 429, reason, {"Retry-After": str(wait)})
    return ok(await accounts.register(body), message="registered")


async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, Login)
    credentials = await request.app[ACCOUNTS].login(body)
    if credentials is None:
        raise UnauthorizedError("wrong username or password")
    return ok(credentials, message="logged in")


def setup_auth_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    app[REGISTRATIONS] = DailyLimit(app[SETTINGS].registrations_per_day)
    add_route(
        app,
        registry,
        "POST",
        "/auth/register",
        register,
        "Register a node and get its first API key",
        request=Registration,
        response=Credentials,
        public=True,
        errors=(403, 409, 429),
        description="Open only when the operator set AGENT_REGISTRATION=open (else 403). The node starts "
        "with AGENT_SIGNUP_CREDITS credits.",
    )
    add_route(
        app,
        registry,
        "POST",
        "/auth/login",
        login,
        "Log in with a password and get a new API key",
        request=Login,
        response=Credentials,
        public=True,
        errors=(401,),
    )

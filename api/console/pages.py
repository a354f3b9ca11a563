"""How a console page is declared, rendered and listed in the navigation.

A page is a template under ``templates/`` that extends ``base.html``, registered with
:func:`add_page`: its path, its template, its title, optionally a navigation label and a function
of the request giving extra template values (ids from the path, say). The page itself carries no
data: its script asks the API (``/api/v1/...``, ``/v1/...``) from the browser with the session
cookie, so what it shows is exactly what the user's key may read, through the same code every
other client uses.

Every page gets ``user``, ``anonymous``, ``signed_in``, ``csrf_token``, ``nav``, ``section``,
``title``, ``page_path`` and ``static_url(name)``; its responses carry a strict Content-Security-Policy
(scripts and styles only from the console's own files, no inline script), so data values go into
``data-*`` attributes, never into a ``<script>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from api.web.auth import ANONYMOUS
from api.web.keys import SETTINGS, USER
from api.web.session import read_session

__all__ = ["NAV", "NavEntry", "PageContext", "add_page", "base_context", "render_page", "secure_request"]

PageContext = Callable[[web.Request], Mapping[str, Any]]


@dataclass(frozen=True)
class NavEntry:
    path: str
    label: str


NAV = web.AppKey("console_nav", list[NavEntry])

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def secure_request(request: web.Request) -> bool:
    """Whether the browser reached us over https (directly, or via a proxy AGENT_PUBLIC_URL names)."""
    public_url = request.app[SETTINGS].public_url
    return request.secure or bool(public_url and public_url.startswith("https://"))


def base_context(request: web.Request) -> dict[str, Any]:
    user = request.get(USER, ANONYMOUS)
    session = read_session(request)
    return {
        "user": user,
        "anonymous": user == ANONYMOUS,
        "signed_in": session is not None and user != ANONYMOUS,
        "csrf_token": session.csrf_token if session is not None else "",
        "nav": request.app[NAV],
        "page_path": request.path,
        "section": None,
    }


def render_page(
    request: web.Request, template: str, title: str, extra: Mapping[str, Any] | None = None, status: int = 200
) -> web.Response:
    context = {**base_context(request), "title": title, **(extra or {})}
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def add_page(
    app: web.Application,
    path: str,
    template: str,
    *,
    title: str,
    nav_label: str | None = None,
    section: str | None = None,
    context: PageContext | None = None,
) -> None:
    """Serves ``template`` at ``GET path``. With ``nav_label`` the page is listed in the navigation
    (in the order pages are added); ``section`` is the navigation entry a page without one belongs
    to (marked current while it is shown)."""
    current = path if nav_label is not None else section

    async def handler(request: web.Request) -> web.Response:
        extra = {"section": current, **(context(request) if context else {})}
        return render_page(request, template, title, extra)

    app.router.add_get(path, handler)
    if nav_label is not None:
        app[NAV].append(NavEntry(path, nav_label))

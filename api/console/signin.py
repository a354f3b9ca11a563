"""Signing in to the console with an API key, and out again.

Both routes are public to the auth middleware and check their own form: sign-in takes a key, checks
it exactly as a header would be checked (:func:`api.web.auth.user_of_token`) and puts it in the
session cookie (:mod:`api.web.session`); sign-out needs the session's CSRF token as a form field.
Sign-in refuses a form posted from another site (``Sec-Fetch-Site`` / ``Origin``), so no page can
sign a visitor in under the page author's key ("login CSRF"). A console page asked for without
valid credentials redirects here (:func:`signin_redirect_middleware`), coming back afterwards.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from api.console.pages import render_page, secure_request
from api.web.auth import user_of_token
from api.web.errors import UnauthorizedError
from api.web.session import (
    MAX_KEY_CHARS,
    ConsoleSession,
    clear_session_cookie,
    read_session,
    set_session_cookie,
)

__all__ = ["see_other", "setup_signin_routes", "signin_redirect_middleware"]

SIGNIN_PATH = "/console/signin"
HOME_PATH = "/console"


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (never ``//host`` or ``https://...``): no open redirect."""
    if not target or not target.startswith(HOME_PATH) or target.startswith("//") or "\\" in target:
        return HOME_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME_PATH
    return target


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _cross_site(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def _form(request: web.Request, error: str | None, next_path: str, status: int) -> web.Response:
    return render_page(
        request,
        "signin.html",
        "Sign in",
        {"error": error, "next_path": next_path, "max_key_chars": MAX_KEY_CHARS},
        status=status,
    )


async def signin_form(request: web.Request) -> web.Response:
    return _form(request, None, _safe_next(request.query.get("next")), 200)


async def signin(request: web.Request) -> web.StreamResponse:
    if _cross_site(request):
        return _form(
            request, "This form was posted from another site; sign in from this page.", HOME_PATH, 403
        )
    form = await request.post()
    key = str(form.get("api_key", "")).strip()
    next_path = _safe_next(str(form.get("next", "")))
    if not key:
        return _form(request, "Enter an API key.", next_path, 400)
    if len(key) > MAX_KEY_CHARS:
        return _form(request, f"An API key is at most {MAX_KEY_CHARS} characters.", next_path, 400)
    if await user_of_token(request.app, key) is None:
        return _form(request, "That API key is not valid.", next_path, 401)
    response = see_other(next_path)
    set_session_cookie(response, ConsoleSession.new(key), secure=secure_request(request))
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    session = read_session(request)
    form = await request.post()
    if session is not None and not session.accepts(str(form.get("csrf_token", "")) or None):
        raise web.HTTPForbidden(text="missing or wrong CSRF token for this console session")
    response = see_other(SIGNIN_PATH)
    clear_session_cookie(response, secure=secure_request(request))
    return response


@web.middleware
async def signin_redirect_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A console page without valid credentials sends the browser to sign in (the API keeps its 401)."""
    try:
        return await handler(request)
    except UnauthorizedError:
        if request.method != "GET" or not (
            request.path == HOME_PATH or request.path.startswith(HOME_PATH + "/")
        ):
            raise
        response = see_other(f"{SIGNIN_PATH}?next={quote(request.path_qs, safe='/')}")
        if read_session(request) is not None:  # a key that no longer works: forget it
            clear_session_cookie(response, secure=secure_request(request))
        return response


def setup_signin_routes(app: web.Application) -> None:
    app.router.add_get(SIGNIN_PATH, signin_form)
    app.router.add_post(SIGNIN_PATH, signin)
    app.router.add_post("/console/signout", signout)

"""The web console at ``/console``: server-rendered pages whose scripts are clients of our own API.

Layout: ``pages.py`` (declaring and rendering a page, the navigation), ``signin.py`` (the session
cookie's sign-in and sign-out), ``assets.py`` (``static/`` served with hashed URLs), one module per
group of pages (``tasks.py``, ``chat.py``, ...), templates in ``templates/`` (each extends
``base.html``) and the browser code in ``static/`` (``console.js``: the API helper every page
uses; ``timeline.js``: a task's events rendered incrementally). See docs/console.md.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from api.console.assets import load_assets, serve_asset
from api.console.capabilities import setup_capability_pages
from api.console.chat import setup_chat_page
from api.console.market import setup_market_pages
from api.console.pages import NAV
from api.console.signin import setup_signin_routes, signin_redirect_middleware
from api.console.tasks import setup_task_pages
from api.console.workspaces import setup_workspace_pages

__all__ = ["setup_console", "signin_redirect_middleware"]


def setup_console(app: web.Application) -> None:
    assets = load_assets()
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("api.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    environment.globals["static_url"] = assets.url
    app[NAV] = []

    async def asset(request: web.Request) -> web.Response:
        return serve_asset(assets, request)

    app.router.add_get("/console/static/{name}", asset)
    setup_signin_routes(app)
    # Pages, in navigation order.
    setup_task_pages(app)
    setup_chat_page(app)
    setup_workspace_pages(app)
    setup_capability_pages(app)
    setup_market_pages(app)

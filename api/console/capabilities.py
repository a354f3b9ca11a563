"""The capability pages: the catalogue (global ones, the user's own and other users' public ones,
with price and rating) and one capability with a form that invokes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from api.console.pages import add_page

__all__ = ["setup_capability_pages"]

MAX_ID_CHARS = 64  # a capability id's own limit


def _capability_context(request: web.Request) -> Mapping[str, Any]:
    capability_id = request.match_info["capability_id"]
    if len(capability_id) > MAX_ID_CHARS:
        raise web.HTTPNotFound(text="no such capability")
    return {"capability_id": capability_id}


def setup_capability_pages(app: web.Application) -> None:
    add_page(
        app, "/console/capabilities", "capabilities.html", title="Capabilities", nav_label="Capabilities"
    )
    add_page(
        app,
        "/console/capabilities/{capability_id}",
        "capability.html",
        title="Capability",
        section="/console/capabilities",
        context=_capability_context,
    )

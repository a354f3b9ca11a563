"""The workspace pages: the user's workspaces; one workspace's file tree (download, upload) and
conversations; one conversation's history, with a follow-up message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from api.console.pages import add_page

__all__ = ["setup_workspace_pages"]

MAX_ID_CHARS = 200


def _path_ids(request: web.Request) -> Mapping[str, Any]:
    """The ids in the path, for the page's script to ask the API about (which checks them)."""
    ids = dict(request.match_info)
    if any(len(value) > MAX_ID_CHARS for value in ids.values()):
        raise web.HTTPNotFound(text="no such workspace or conversation")
    return ids


def setup_workspace_pages(app: web.Application) -> None:
    add_page(app, "/console/workspaces", "workspaces.html", title="Workspaces", nav_label="Workspaces")
    add_page(
        app,
        "/console/workspaces/{workspace_id}",
        "workspace.html",
        title="Workspace",
        section="/console/workspaces",
        context=_path_ids,
    )
    add_page(
        app,
        "/console/workspaces/{workspace_id}/conversations/{conversation_id}",
        "conversation.html",
        title="Conversation",
        section="/console/workspaces",
        context=_path_ids,
    )

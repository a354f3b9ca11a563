"""The ``/chat`` playground: a message box whose answer and logs render as a task's timeline."""

from __future__ import annotations

from aiohttp import web

from api.console.pages import add_page

__all__ = ["setup_chat_page"]


def setup_chat_page(app: web.Application) -> None:
    add_page(app, "/console/chat", "chat.html", title="Chat playground", nav_label="Chat")

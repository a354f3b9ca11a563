"""The task pages: the live list of the user's tasks (with a form to start one), and one task's
timeline followed over its SSE stream, with cancel and a follow-up message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from api.console.pages import add_page

__all__ = ["setup_task_pages"]

MAX_ID_CHARS = 200


def _task_context(request: web.Request) -> Mapping[str, Any]:
    task_id = request.match_info["task_id"]
    if len(task_id) > MAX_ID_CHARS:
        raise web.HTTPNotFound(text="no such task")
    return {"task_id": task_id}


def setup_task_pages(app: web.Application) -> None:
    add_page(app, "/console", "tasks.html", title="Tasks", nav_label="Tasks")
    add_page(
        app, "/console/tasks/{task_id}", "task.html", title="Task", section="/console", context=_task_context
    )

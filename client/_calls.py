"""Each API operation as a :class:`Call`: the request to send and how to read its answer.

The sync and async clients send the same calls, so an operation is written once, here; each
client only adds the I/O.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from client._errors import TransportError, error_from_response
from client._models import (
    CanceledTask,
    ChatResult,
    Conversation,
    FileList,
    TaskAccepted,
    TaskPage,
    TaskState,
    UploadedFile,
    Workspace,
)

__all__ = ["DEFAULT_SERVER", "FINAL_STATE", "Call", "Calls", "check", "file_content", "http_options"]

DEFAULT_SERVER = "http://127.0.0.1:8080"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


FINAL_STATE = 2**53 - 1
"""An offset past any task's last event: a :meth:`Calls.get_task` from it reads the state alone."""


def http_options(
    base_url: str | None, api_key: str | None, timeout: float, transport: object
) -> dict[str, Any]:
    """The httpx client's options: ``base_url``, else ``AGENT_SERVER_URL``, else the worker's default
    address; the Bearer header for ``api_key``, else ``AGENT_API_KEY`` (none: an anonymous worker)."""
    key = api_key if api_key is not None else os.environ.get("AGENT_API_KEY")
    return {
        "base_url": (base_url or os.environ.get("AGENT_SERVER_URL") or DEFAULT_SERVER).rstrip("/"),
        "headers": {"Authorization": f"Bearer {key}"} if key else {},
        "timeout": timeout,
        "transport": transport,
    }


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    files: Any = None
    data: Any = None

    def request(self) -> dict[str, Any]:
        """The arguments of ``httpx.Client.request`` (or the async one's) that send this call."""
        return {
            "method": self.method,
            "url": self.path,
            "params": self.params,
            "json": self.json,
            "files": self.files,
            "data": self.data,
        }

    def unreachable(self, base_url: str, error: httpx.TransportError) -> TransportError:
        return TransportError(f"{self.method} {base_url}{self.path}: {error!r}")


def check(response: httpx.Response) -> httpx.Response:
    """The response, or the :class:`~client.APIError` its error status stands for (body read)."""
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def _plain(model: type[M]) -> Callable[[httpx.Response], M]:
    """A ``{"success": true, ...}`` answer read as ``model``."""
    return lambda response: model.model_validate(check(response).json())


def _in(model: type[M], key: str) -> Callable[[httpx.Response], M]:
    """The object under ``key`` (``data`` of either envelope) read as ``model``."""
    return lambda response: model.model_validate(check(response).json()[key])


def _scope(workspace: str | None) -> str:
    return f"/api/v1/workspaces/{quote(workspace, safe='')}" if workspace else "/api/v1"


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class Calls:
    """Every operation the clients offer, as data."""

    @staticmethod
    def chat(message: str, max_iterations: int) -> Call[ChatResult]:
        return Call(
            "POST", "/chat", _plain(ChatResult), json={"message": message, "max_iterations": max_iterations}
        )

    @staticmethod
    def create_workspace(workspace_id: str, python_mode: str | None) -> Call[Workspace]:
        body = _drop_none({"workspace_id": workspace_id, "python_mode": python_mode})
        return Call("POST", "/api/v1/workspaces", _plain(Workspace), json=body)

    @staticmethod
    def create_conversation(workspace: str | None) -> Call[Conversation]:
        return Call("POST", f"{_scope(workspace)}/conversations", _plain(Conversation))

    @staticmethod
    def send_message(
        message: str,
        workspace: str | None,
        conversation_id: str | None,
        run_mode: str | None,
        model_key: str | None,
        max_iterations: int | None,
    ) -> Call[TaskAccepted]:
        body = _drop_none(
            {
                "message": message,
                "conversation_id": conversation_id,
                "run_mode": run_mode,
                "model_key": model_key,
                "max_iterations": max_iterations,
            }
        )
        return Call("POST", f"{_scope(workspace)}/messages", _plain(TaskAccepted), json=body)

    @staticmethod
    def invoke_capability(
        capability_id: str,
        message: str | None,
        workspace: str | None,
        conversation_id: str | None,
        idempotency_key: str | None,
    ) -> Call[TaskAccepted]:
        body = _drop_none(
            {
                "message": message,
                "workspace_id": workspace,
                "conversation_id": conversation_id,
                "idempotency_key": idempotency_key,
            }
        )
        path = f"/api/v1/capabilities/{quote(capability_id, safe='')}/invoke"
        return Call("POST", path, _in(TaskAccepted, "data"), json=body)

    @staticmethod
    def get_task(task_id: str, from_offset: int, wait: float, limit: int | None) -> Call[TaskState]:
        params = _drop_none({"from": from_offset, "wait": wait or None, "limit": limit})
        return Call("GET", f"/api/v1/tasks/{quote(task_id, safe='')}", _in(TaskState, "data"), params=params)

    @staticmethod
    def list_tasks(
        status: str | None, conversation_id: str | None, page: int, page_size: int
    ) -> Call[TaskPage]:
        params = _drop_none(
            {"status": status, "conversation_id": conversation_id, "page": page, "page_size": page_size}
        )
        return Call("GET", "/api/v1/tasks", _plain(TaskPage), params=params)

    @staticmethod
    def cancel(task_id: str) -> Call[CanceledTask]:
        return Call("POST", f"/api/v1/tasks/{quote(task_id, safe='')}/cancel", _plain(CanceledTask))

    @staticmethod
    def upload_file(
        name: str, content: bytes, workspace: str | None, directory: str | None
    ) -> Call[UploadedFile]:
        data = _drop_none({"path": directory})
        files = {"file": (name, content, "application/octet-stream")}
        return Call("POST", f"{_scope(workspace)}/files/upload", _plain(UploadedFile), files=files, data=data)

    @staticmethod
    def list_files(path: str, workspace: str | None) -> Call[FileList]:
        return Call(
            "GET", f"{_scope(workspace)}/files", _plain(FileList), params=_drop_none({"path": path or None})
        )

    @staticmethod
    def download_file(path: str, workspace: str | None) -> Call[bytes]:
        return Call(
            "GET", f"{_scope(workspace)}/files/download", lambda r: check(r).content, params={"path": path}
        )


def file_content(file: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
    """The bytes to upload and their file name."""
    if isinstance(file, bytes):
        if not name:
            raise ValueError("name= is required when uploading bytes")
        return file, name
    path = Path(file)
    return path.read_bytes(), name or path.name

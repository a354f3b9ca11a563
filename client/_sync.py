"""The blocking client: :class:`Client`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
from httpx_sse import connect_sse

from client._calls import FINAL_STATE, Call, Calls, check, file_content, http_options
from client._models import (
    CanceledTask,
    ChatResult,
    Conversation,
    FileList,
    TaskAccepted,
    TaskEvent,
    TaskPage,
    TaskState,
    UploadedFile,
    Workspace,
)
from client._resume import RETRYABLE, STREAM_TIMEOUT, Follow, decode

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """A client of one worker. ``base_url`` defaults to ``AGENT_SERVER_URL`` (else
    ``http://127.0.0.1:8080``), ``api_key`` to ``AGENT_API_KEY`` (none: an anonymous worker).

    Use it as a context manager, or call :meth:`close`. ``transport`` replaces httpx's (tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options = http_options(base_url, api_key, timeout, transport)
        self.base_url: str = options["base_url"]
        self._http = httpx.Client(**options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.request(**call.request())
        except httpx.TransportError as e:
            raise call.unreachable(self.base_url, e) from e
        return call.read(response)

    def chat(self, message: str, *, max_iterations: int = 10) -> ChatResult:
        """``POST /chat``: run the agent once and wait for its answer (no task, no workspace)."""
        return self._send(Calls.chat(message, max_iterations))

    def create_workspace(self, workspace_id: str, *, python_mode: str | None = None) -> Workspace:
        return self._send(Calls.create_workspace(workspace_id, python_mode))

    def create_conversation(self, *, workspace: str | None = None) -> Conversation:
        return self._send(Calls.create_conversation(workspace))

    def send_message(
        self,
        message: str,
        *,
        workspace: str | None = None,
        conversation_id: str | None = None,
        run_mode: str | None = None,
        model_key: str | None = None,
        max_iterations: int | None = None,
    ) -> TaskAccepted:
        """Start a task: a message in a conversation (a new one when ``conversation_id`` is None)."""
        return self._send(
            Calls.send_message(message, workspace, conversation_id, run_mode, model_key, max_iterations)
        )

    def invoke_capability(
        self,
        capability_id: str,
        message: str | None = None,
        *,
        workspace: str | None = None,
        conversation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskAccepted:
        """Start a task running a capability (another user's priced one is a paid order)."""
        return self._send(
            Calls.invoke_capability(capability_id, message, workspace, conversation_id, idempotency_key)
        )

    def get_task(
        self, task_id: str, *, from_offset: int = 0, wait: float = 0.0, limit: int | None = None
    ) -> TaskState:
        """The task's status and a page of its events from ``from_offset`` (``wait``: long-poll)."""
        return self._send(Calls.get_task(task_id, from_offset, wait, limit))

    def list_tasks(
        self,
        *,
        status: str | None = None,
        conversation_id: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> TaskPage:
        """Your tasks, newest first."""
        return self._send(Calls.list_tasks(status, conversation_id, page, page_size))

    def cancel(self, task_id: str) -> CanceledTask:
        return self._send(Calls.cancel(task_id))

    def upload_file(
        self,
        file: str | Path | bytes,
        *,
        name: str | None = None,
        workspace: str | None = None,
        directory: str | None = None,
    ) -> UploadedFile:
        """Upload a file (a path, or bytes with ``name``) into the workspace's ``user_upload/``."""
        content, filename = file_content(file, name)
        return self._send(Calls.upload_file(filename, content, workspace, directory))

    def list_files(self, path: str = "", *, workspace: str | None = None) -> FileList:
        return self._send(Calls.list_files(path, workspace))

    def download_file(self, path: str, *, workspace: str | None = None) -> bytes:
        return self._send(Calls.download_file(path, workspace))

    def follow(self, task_id: str, *, from_offset: int = 0, max_reconnects: int = 5) -> Iterator[TaskEvent]:
        """The task's events from ``from_offset`` as they happen, up to and including the final one.

        A dropped stream is resumed from the last event received (``Last-Event-ID``); after
        ``max_reconnects`` failed reconnects in a row, :class:`~client.TransportError`.
        """
        follow = Follow(task_id, from_offset, max_reconnects)
        while not follow.ended:
            try:
                with connect_sse(
                    self._http, "GET", follow.path, headers=follow.headers(), timeout=STREAM_TIMEOUT
                ) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        check(source.response)
                    for sse in source.iter_sse():
                        yield from follow.received([decode(sse)])
                        if follow.ended:
                            return
                yield from follow.polled(self._send(follow.poll()))
            except RETRYABLE as e:
                time.sleep(follow.failed(e))

    def wait(self, task_id: str) -> TaskState:
        """Follow the task to its end; its final state (with no events)."""
        for _ in self.follow(task_id):
            pass
        return self.get_task(task_id, from_offset=FINAL_STATE)

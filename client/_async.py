"""The asyncio client: :class:`AsyncClient`, the same operations as :class:`~client.Client`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
from httpx_sse import aconnect_sse

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

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """A client of one worker. ``base_url`` defaults to ``AGENT_SERVER_URL`` (else
    ``http://127.0.0.1:8080``), ``api_key`` to ``AGENT_API_KEY`` (none: an anonymous worker).

    Use it as an async context manager, or await :meth:`aclose`. ``transport`` replaces httpx's.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = http_options(base_url, api_key, timeout, transport)
        self.base_url: str = options["base_url"]
        self._http = httpx.AsyncClient(**options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object | TracebackType) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(**call.request())
        except httpx.TransportError as e:
            raise call.unreachable(self.base_url, e) from e
        return call.read(response)

    async def chat(self, message: str, *, max_iterations: int = 10) -> ChatResult:
        """``POST /chat``: run the agent once and wait for its answer (no task, no workspace)."""
        return await self._send(Calls.chat(message, max_iterations))

    async def create_workspace(self, workspace_id: str, *, python_mode: str | None = None) -> Workspace:
        return await self._send(Calls.create_workspace(workspace_id, python_mode))

    async def create_conversation(self, *, workspace: str | None = None) -> Conversation:
        return await self._send(Calls.create_conversation(workspace))

    async def send_message(
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
        return await self._send(
            Calls.send_message(message, workspace, conversation_id, run_mode, model_key, max_iterations)
        )

    async def invoke_capability(
        self,
        capability_id: str,
        message: str | None = None,
        *,
        workspace: str | None = None,
        conversation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskAccepted:
        """Start a task running a capability (another user's priced one is a paid order)."""
        return await self._send(
            Calls.invoke_capability(capability_id, message, workspace, conversation_id, idempotency_key)
        )

    async def get_task(
        self, task_id: str, *, from_offset: int = 0, wait: float = 0.0, limit: int | None = None
    ) -> TaskState:
        """The task's status and a page of its events from ``from_offset`` (``wait``: long-poll)."""
        return await self._send(Calls.get_task(task_id, from_offset, wait, limit))

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        conversation_id: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> TaskPage:
        """Your tasks, newest first."""
        return await self._send(Calls.list_tasks(status, conversation_id, page, page_size))

    async def cancel(self, task_id: str) -> CanceledTask:
        return await self._send(Calls.cancel(task_id))

    async def upload_file(
        self,
        file: str | Path | bytes,
        *,
        name: str | None = None,
        workspace: str | None = None,
        directory: str | None = None,
    ) -> UploadedFile:
        """Upload a file (a path, or bytes with ``name``) into the workspace's ``user_upload/``."""
        content, filename = await asyncio.to_thread(file_content, file, name)
        return await self._send(Calls.upload_file(filename, content, workspace, directory))

    async def list_files(self, path: str = "", *, workspace: str | None = None) -> FileList:
        return await self._send(Calls.list_files(path, workspace))

    async def download_file(self, path: str, *, workspace: str | None = None) -> bytes:
        return await self._send(Calls.download_file(path, workspace))

    async def follow(
        self, task_id: str, *, from_offset: int = 0, max_reconnects: int = 5
    ) -> AsyncIterator[TaskEvent]:
        """The task's events from ``from_offset`` as they happen, up to and including the final one.

        A dropped stream is resumed from the last event received (``Last-Event-ID``); after
        ``max_reconnects`` failed reconnects in a row, :class:`~client.TransportError`.
        """
        follow = Follow(task_id, from_offset, max_reconnects)
        while not follow.ended:
            try:
                async with aconnect_sse(
                    self._http, "GET", follow.path, headers=follow.headers(), timeout=STREAM_TIMEOUT
                ) as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        check(source.response)
                    async for sse in source.aiter_sse():
                        for event in follow.received([decode(sse)]):
                            yield event
                        if follow.ended:
                            return
                for event in follow.polled(await self._send(follow.poll())):
                    yield event
            except RETRYABLE as e:
                await asyncio.sleep(follow.failed(e))

    async def wait(self, task_id: str) -> TaskState:
        """Follow the task to its end; its final state (with no events)."""
        async for _ in self.follow(task_id):
            pass
        return await self.get_task(task_id, from_offset=FINAL_STATE)

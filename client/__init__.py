"""A typed Python client of the worker's API, blocking (:class:`Client`) and asyncio (:class:`AsyncClient`).

::

    from client import Client

    with Client("http://127.0.0.1:8080", api_key="...") as api:
        task = api.send_message("What is 25 * 25? Calculate with Python.")
        for event in api.follow(task.task_id):   # resumes by itself after a dropped connection
            if event.type == "text_chunk":
                print(event.data["content"], end="")

See docs/client.md; errors are drawn as a tree in :mod:`client._errors`.
"""

from client._async import AsyncClient
from client._errors import (
    AgentWorkerClientError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    UnprocessableError,
)
from client._models import (
    FINAL_EVENTS,
    CanceledTask,
    ChatResult,
    Conversation,
    FileEntry,
    FileList,
    TaskAccepted,
    TaskEvent,
    TaskPage,
    TaskState,
    TaskSummary,
    TaskUsage,
    UploadedFile,
    Workspace,
)
from client._sync import Client

__all__ = [
    "FINAL_EVENTS",
    "APIError",
    "AgentWorkerClientError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "CanceledTask",
    "ChatResult",
    "Client",
    "ConflictError",
    "Conversation",
    "FileEntry",
    "FileList",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TaskAccepted",
    "TaskEvent",
    "TaskPage",
    "TaskState",
    "TaskSummary",
    "TaskUsage",
    "TransportError",
    "UnprocessableError",
    "UploadedFile",
    "Workspace",
]

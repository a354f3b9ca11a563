"""``/api/v1/files``: upload into ``user_upload/``, list the tree, download; per workspace.

The files API over the directory each workspace mounts at ``/workspace`` in its sandboxes,
so the agent sees what is uploaded and what it writes can be downloaded. The filesystem work, and
the confinement of every path to the workspace, is :mod:`runtime.workspaces.files`; this module
speaks HTTP: a streamed multipart body in, JSON or a streamed file out.
"""

from __future__ import annotations

import math
import mimetypes
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, Field

from api.rest.workspaces import workspace_of
from api.web.http import json_model, parse_query
from api.web.keys import SETTINGS, USER, WORKSPACES
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.errors import InputError
from runtime.workspaces.files import (
    UPLOAD_DIR,
    FileEntry,
    check_file_name,
    split_path,
)
from runtime.workspaces.remote_files import FileStore, Upload

__all__ = ["setup_file_routes"]

UPLOAD_CHUNK_BYTES = 256 * 1024
MAX_FIELD_BYTES = 4096  # the `path` form field


class UploadResponse(BaseModel):
    success: bool = True
    path: str = Field(description=f"Where the file is, relative to the workspace root: {UPLOAD_DIR}/...")
    size: int = Field(description="Bytes received.")


class ListQuery(BaseModel):
    path: str = Field(
        "", description="Directory to list, relative to the workspace root (default: the root)."
    )


class FileList(BaseModel):
    success: bool = True
    files: list[FileEntry] = Field(description="Every entry under the directory, recursively, in path order.")
    truncated: bool = Field(description="Entries were left out (too many, or nested too deep).")


class DownloadQuery(BaseModel):
    path: str = Field(min_length=1, description="File to download, relative to the workspace root.")


_UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "Its filename is kept."},
                    "path": {"type": "string", "description": f"Sub-directory of {UPLOAD_DIR}/ (created)."},
                },
            }
        }
    },
}
_FILE_RESPONSE: dict[str, Any] = {
    "200": {
        "description": "The file, as an attachment. Content-Type is guessed from the file's name "
        "(text/plain for .txt, image/png for .png, ...); application/octet-stream when the name says nothing.",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def _workspace_files(request: web.Request) -> FileStore:
    workspace_id = await workspace_of(request)
    return await request.app[WORKSPACES].files(request[USER], workspace_id)


@contextmanager
def _well_formed() -> Iterator[None]:
    """aiohttp's multipart errors about the body are the caller's: 400."""
    try:
        yield
    except (ValueError, HttpProcessingError) as e:
        raise InputError(f"malformed multipart body: {e}") from None


async def _chunks(part: BodyPartReader, size: int) -> AsyncIterator[bytes]:
    while True:
        with _well_formed():
            chunk = await part.read_chunk(size)
        if not chunk:
            return
        yield chunk


async def _field_text(part: BodyPartReader) -> str:
    data = bytearray()
    async for chunk in _chunks(part, MAX_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise InputError(f"form field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InputError(f"form field {part.name!r} is not UTF-8") from None


async def _receive(reader: MultipartReader, pending: Upload) -> tuple[str, str]:
    """Reads every part, the file into ``pending``; its name and the ``path`` field."""
    name: str | None = None
    directory = ""
    seen: set[str | None] = set()
    while True:
        with _well_formed():
            part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise InputError("nested multipart bodies are not accepted")
        if part.name not in ("file", "path"):
            raise InputError(f"unexpected form field {part.name!r}: send 'file' and, optionally, 'path'")
        if part.name in seen:
            raise InputError(f"form field {part.name!r} sent twice")
        seen.add(part.name)
        if part.name == "path":
            directory = await _field_text(part)
            split_path(directory)  # refused before the file is read, not after
        else:
            name = check_file_name(part.filename or "")
            await pending.write(_chunks(part, UPLOAD_CHUNK_BYTES))
    if name is None:
        raise InputError("no file: send it in the multipart/form-data field 'file'")
    return name, directory


async def upload_file(request: web.Request) -> web.Response:
    if request.content_type != "multipart/form-data":
        raise InputError("send the file as multipart/form-data, in the field 'file'")
    files = await _workspace_files(request)
    with _well_formed():
        reader = await request.multipart()
    async with files.upload(request.app[SETTINGS].max_upload_bytes) as pending:
        name, directory = await _receive(reader, pending)
        path = await pending.commit(directory, name)
    return json_model(UploadResponse(path=path, size=pending.size))


async def list_files(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    tree = await (await _workspace_files(request)).list_tree(query.path)
    return json_model(FileList(files=tree.files, truncated=tree.truncated))


def _attachment(name: str) -> str:
    """RFC 6266: an ASCII fallback name, and the exact one in ``filename*``."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class _OpenedFileResponse(web.FileResponse):
    """Sends a file the handler already opened, never looking its name up again.

    FileResponse opens by path; given ``/proc/self/fd/N`` it opens the very file behind our
    descriptor, so a symlink swapped in after the check changes nothing. Our descriptor is closed
    once the response is sent. (Linux, as the sandboxes are.)
    """

    def __init__(self, file: BinaryIO, name: str) -> None:
        super().__init__(
            f"/proc/self/fd/{file.fileno()}", headers={hdrs.CONTENT_DISPOSITION: _attachment(name)}
        )
        self.content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._file = file

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            return await super().prepare(request)
        finally:
            self._file.close()

    # FileResponse rounds the file's mtime *up* to the second (so an If-Modified-Since of it
    # matches the file), which put a file written this second after the response's Date: the
    # current second, rounded down. A date in the future is replaced by now (RFC 9110 8.8.2.1).
    @property
    def last_modified(self) -> datetime | None:
        return super().last_modified

    @last_modified.setter
    def last_modified(self, value: float | datetime | str | None) -> None:
        if isinstance(value, int | float):
            value = min(math.ceil(value), int(time.time()))
        web.FileResponse.last_modified.fset(self, value)  # type: ignore[attr-defined]


async def download_file(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, DownloadQuery)
    file = await (await _workspace_files(request)).open_file(query.path)
    return _OpenedFileResponse(file, split_path(query.path)[-1])


def setup_file_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    registry.add_scoped(
        app.router,
        Operation(
            "POST",
            "/files/upload",
            f"Upload a file into the workspace's {UPLOAD_DIR}/",
            "files",
            response=UploadResponse,
            request_raw=_UPLOAD_BODY,
            errors=(400, 404, 409, 413),
            description="multipart/form-data with the field `file` and optionally `path`, a "
            f"sub-directory of {UPLOAD_DIR}/. A file of the same name is replaced. Over "
            "AGENT_MAX_UPLOAD_BYTES, or over the space left in the workspace's disk quota "
            "(AGENT_WORKSPACE_MAX_MB), is a 413 and nothing is kept.",
        ),
        upload_file,
    )
    registry.add_scoped(
        app.router,
        Operation(
            "GET",
            "/files",
            "List the workspace's files, recursively",
            "files",
            response=FileList,
            query=ListQuery,
            errors=(400, 404),
            description="Symlinks are listed as `symlink` and never followed.",
        ),
        list_files,
    )
    registry.add_scoped(
        app.router,
        Operation(
            "GET",
            "/files/download",
            "Download a file of the workspace",
            "files",
            query=DownloadQuery,
            errors=(400, 404),
            responses_raw=_FILE_RESPONSE,
        ),
        download_file,
    )

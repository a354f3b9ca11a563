"""A workspace's files as the files API sees them: list a tree, open a file, save an upload.

The directories are shared with the agent's sandbox, where the agent can create symlinks (to
``/etc``, to another user's workspace) and swap a directory for one at any moment. So a path the
caller gives is never looked up by name from the root: each component is opened relative to its
parent's descriptor with ``O_NOFOLLOW``, and a symlink anywhere on the way is refused, wherever it
points. What was checked is what gets used: there is no second lookup a swap could redirect.
Listing never follows symlinks either; it shows them as ``symlink`` entries.

A workspace with a quota is a filesystem of that size (:mod:`runtime.workspaces.volumes`): an
upload is refused as soon as it is larger than the space left, and whatever fills the disk first
(the agent, another upload) is a :class:`PayloadTooLargeError` too, never half a file.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import stat
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field

from runtime.errors import AgentWorkerError, ConflictError, InputError, NotFoundError, PayloadTooLargeError
from sandbox.base import SANDBOX_UID

__all__ = [
    "MAX_LIST_DEPTH",
    "MAX_LIST_ENTRIES",
    "SANDBOX_UID",
    "UPLOAD_DIR",
    "FileEntry",
    "FileTree",
    "PendingUpload",
    "WorkspaceFiles",
    "check_file_name",
    "split_path",
]

UPLOAD_DIR = "user_upload"
MAX_LIST_ENTRIES = 10_000
MAX_LIST_DEPTH = 64  # each level holds a descriptor while the walk is below it

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the agent left must not hang the worker; it is refused below.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def split_path(path: str) -> list[str]:
    """A caller's path relative to the workspace root, as its components ('' and '.' are the root)."""
    if "\x00" in path:
        raise InputError("path contains a NUL byte")
    if path.startswith("/"):
        raise InputError(f"path {path!r} is absolute; give it relative to the workspace root")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InputError(f"path {path!r} contains '..'; give it relative to the workspace root")
    return parts


def check_file_name(name: str) -> str:
    """An uploaded file's name: one path component, never a way out of its directory."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name:
        raise InputError(f"invalid file name {name!r}: it must be a plain name, without '/' or NUL")
    return name


class FileEntry(BaseModel):
    path: str = Field(description="Relative to the workspace root; bytes that are not UTF-8 shown as U+FFFD.")
    type: Literal["file", "dir", "symlink", "other"] = Field(
        description="'symlink' entries are never followed; 'other' is a FIFO, socket or device."
    )
    size: int = Field(description="Bytes, for a file; 0 for anything else.")
    modified: float = Field(description="Last modification time, Unix seconds.")


class FileTree(BaseModel):
    files: list[FileEntry] = Field(description="Every entry under the directory, in path order.")
    truncated: bool = Field(
        description=f"Entries were left out: more than {MAX_LIST_ENTRIES}, or deeper than {MAX_LIST_DEPTH} levels."
    )


class WorkspaceFiles:
    """The files under one workspace directory (``root``, trusted: the worker made it)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def list_tree(self, path: str = "") -> FileTree:
        return await asyncio.to_thread(self._list, split_path(path))

    async def open_file(self, path: str) -> BinaryIO:
        """The regular file at ``path``, open for reading; the caller closes it."""
        return await asyncio.to_thread(self._open, split_path(path))

    async def read_file(self, path: str, offset: int, limit: int) -> tuple[bytes, int]:
        """Up to ``limit`` bytes of the regular file at ``path`` from ``offset``, and its size."""
        file = await self.open_file(path)
        with file:
            return await asyncio.to_thread(_read_range, file, offset, limit)

    async def write_file(self, path: str, data: bytes) -> str:
        """Create or replace the file at ``path`` (missing directories made); the path written.

        The bytes go to a hidden temp file beside it, renamed into place: no reader sees half a file.
        """
        return await asyncio.to_thread(self._write, split_path(path), data)

    @asynccontextmanager
    async def upload(self, limit: int) -> AsyncIterator[PendingUpload]:
        """A temp file in ``user_upload/``; gone on exit unless :meth:`PendingUpload.commit` moved it.

        It may be ``limit`` bytes, or as many as the workspace's disk has left, whichever is less.
        """
        pending = await asyncio.to_thread(PendingUpload.start, self._root, limit)
        try:
            yield pending
        finally:
            await asyncio.to_thread(pending.discard)

    def _list(self, parts: list[str]) -> FileTree:
        walk = _Walk()
        with _open_dir(self._root, parts) as top:
            walk.walk(top, "/".join(parts), depth=0)
        return FileTree(files=walk.entries, truncated=walk.truncated)

    def _open(self, parts: list[str]) -> BinaryIO:
        if not parts:
            raise InputError("the workspace root is a directory; give the path of a file")
        shown = "/".join(parts)
        with _open_dir(self._root, parts[:-1]) as parent:
            try:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=parent)
            except OSError as e:
                raise _refusal(e, parent, parts[-1], shown) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise InputError(f"{shown} is {kind}; only files can be downloaded")
        return open(fd, "rb")  # handed to the caller, who closes it

    def _write(self, parts: list[str], data: bytes) -> str:
        if not parts:
            raise InputError("the workspace root is a directory; give the path of a file")
        shown, name = "/".join(parts), parts[-1]
        with _open_dir(self._root, parts[:-1], create=True) as parent:
            temp = f".write-{secrets.token_hex(8)}.part"
            try:
                with _disk_space(), open(os.open(temp, _NEW_FILE_FLAGS, 0o644, dir_fd=parent), "wb") as file:
                    _share_with_sandbox(file.fileno(), 0o666)
                    file.write(data)
                os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException as e:
                with suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=parent)
                if isinstance(e, IsADirectoryError):
                    raise ConflictError(f"{shown} is a directory") from None
                if isinstance(e, OSError):
                    raise _refusal(e, parent, name, shown) from None
                raise
        return shown


class PendingUpload:
    """An upload being written to a hidden temp file in ``user_upload/``, then renamed into place."""

    def __init__(
        self, root: Path, upload_dir: int, temp_name: str, file: BinaryIO, limit: int, space: int
    ) -> None:
        self._root = root
        self._upload_dir = upload_dir
        self._temp_name = temp_name
        self._file = file
        self._limit = limit
        self._space = space  # bytes the workspace's disk had left when the upload started
        self.size = 0
        self._committed = False

    @classmethod
    def start(cls, root: Path, limit: int) -> PendingUpload:
        with _open_dir(root, [UPLOAD_DIR], create=True) as upload_dir:
            disk = os.fstatvfs(upload_dir)
            temp_name = f".upload-{secrets.token_hex(8)}.part"
            fd = os.open(temp_name, _NEW_FILE_FLAGS, 0o644, dir_fd=upload_dir)
            _share_with_sandbox(fd, 0o666)
            space = disk.f_bavail * disk.f_frsize
            return cls(root, os.dup(upload_dir), temp_name, open(fd, "wb"), limit, space)

    async def write(self, chunks: AsyncIterable[bytes]) -> None:
        """Append ``chunks``; too large raises :class:`PayloadTooLargeError` (the temp file goes on exit)."""
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > self._limit:
                raise PayloadTooLargeError(f"the file is larger than the upload limit of {self._limit} bytes")
            if self.size > self._space:
                raise PayloadTooLargeError(_no_space(self._space))
            with _disk_space():
                await asyncio.to_thread(self._file.write, chunk)

    async def commit(self, directory: str, name: str) -> str:
        """Move the file to ``user_upload/<directory>/<name>`` (replacing a file there); its path."""
        return await asyncio.to_thread(self._commit, [UPLOAD_DIR, *split_path(directory)], name)

    def _commit(self, parts: list[str], name: str) -> str:
        with _disk_space():  # the last buffered bytes are written now
            self._file.close()
        shown = "/".join([*parts, check_file_name(name)])
        with _open_dir(self._root, parts, create=True) as target:
            try:
                os.rename(self._temp_name, name, src_dir_fd=self._upload_dir, dst_dir_fd=target)
            except IsADirectoryError:
                raise ConflictError(f"{shown} is a directory") from None
            except FileNotFoundError:
                raise ConflictError(
                    f"the upload's temporary file left {UPLOAD_DIR}/ before it was complete"
                ) from None
            except OSError as e:
                raise _refusal(e, target, name, shown) from None
        self._committed = True
        return shown

    def discard(self) -> None:
        with suppress(OSError):  # the bytes still buffered may not fit: they are thrown away anyway
            self._file.close()
        if not self._committed:
            with suppress(FileNotFoundError):
                os.unlink(self._temp_name, dir_fd=self._upload_dir)
        os.close(self._upload_dir)


def _no_space(left: int | None = None) -> str:
    have = "its disk space is used up" if left is None else f"it has {left} bytes of disk space left"
    return f"the file does not fit in the workspace: {have} (its quota); delete files there, or send less"


@contextmanager
def _disk_space() -> Iterator[None]:
    """A write that found the workspace's disk full (its quota reached) is the caller's 413."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise PayloadTooLargeError(_no_space()) from None
        raise


def _read_range(file: BinaryIO, offset: int, limit: int) -> tuple[bytes, int]:
    size = os.fstat(file.fileno()).st_size
    file.seek(offset)
    return file.read(limit), size


class _Walk:
    """A depth-first walk in path order that never follows a symlink."""

    def __init__(self) -> None:
        self.entries: list[FileEntry] = []
        self.truncated = False

    def walk(self, dir_fd: int, prefix: str, depth: int) -> None:
        with os.scandir(dir_fd) as scan:
            children = sorted(scan, key=lambda entry: entry.name)
        for child in children:
            if len(self.entries) == MAX_LIST_ENTRIES:
                self.truncated = True
                return
            try:
                info = child.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed since the scan
                continue
            path = _printable(f"{prefix}/{child.name}" if prefix else child.name)
            kind = _kind(info.st_mode)
            size = info.st_size if kind == "file" else 0
            self.entries.append(FileEntry(path=path, type=kind, size=size, modified=info.st_mtime))
            if kind == "dir":
                self._enter(dir_fd, child.name, path, depth + 1)

    def _enter(self, parent: int, name: str, path: str, depth: int) -> None:
        if depth >= MAX_LIST_DEPTH:
            self.truncated = True
            return
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError:  # removed or swapped for a symlink since the scan: listed, not entered
            return
        try:
            self.walk(fd, path, depth)
        finally:
            os.close(fd)


def _kind(mode: int) -> Literal["file", "dir", "symlink", "other"]:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _printable(name: str) -> str:
    """The name with bytes that are not UTF-8 (kept as surrogates by os) shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@contextmanager
def _open_dir(root: Path, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of ``root/parts``, every component opened without following a symlink."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            child = _open_child_dir(fd, name, "/".join(parts[: i + 1]), create)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_child_dir(parent: int, name: str, shown: str, create: bool) -> int:
    made = False
    if create:
        with suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
            made = True
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        raise _refusal(e, parent, name, shown) from None
    if made:
        _share_with_sandbox(fd, 0o777)
    return fd


def _share_with_sandbox(fd: int, open_mode: int) -> None:
    """Let the sandbox user read and write what we made (as ``_prepare_workspace`` does for the root).

    As root we hand it to uid 1000; otherwise (unless we are uid 1000) only wide permissions let it
    write. The descriptor, not a name: what we change is what we created.
    """
    uid = os.geteuid()
    if uid == 0:
        os.fchown(fd, SANDBOX_UID, SANDBOX_UID)
    elif uid != SANDBOX_UID:
        os.fchmod(fd, open_mode)


def _refusal(e: OSError, parent: int, name: str, shown: str) -> AgentWorkerError | OSError:
    """The caller's reason for a failed open of ``name`` under ``parent``; other errors as they are."""
    if e.errno == errno.ENOENT:
        return NotFoundError(f"{shown} not found")
    if e.errno == errno.ENAMETOOLONG:
        return InputError(f"{shown}: a name is too long")
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        with suppress(OSError):
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                return InputError(f"{shown} is a symlink; the files API does not follow symlinks")
        return InputError(f"{shown} is not a directory")
    return e

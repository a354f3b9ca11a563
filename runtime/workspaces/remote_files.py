"""A workspace's files in a Docker volume on its engine, served through the workspace's own sandbox.

On an engine that is not this host there is no path to open: the files live in a volume the
engine holds (:mod:`runtime.workspaces.placement`), mounted at ``/workspace`` in the workspace's
sandbox. So the files API leases that sandbox (the one the workspace's tasks use, started if none
runs) and goes through it: a listing is a small program its executor runs, downloads and uploads
are tar streams through the engine's archive API (``get_archive`` / ``put_archive``) on its
container. Both are resolved by the engine inside the sandbox's own filesystem, which holds this
workspace and nothing of anyone else's: what the agent does there (symlinks, swaps) can redirect a
path only within its own sandbox. As on a host directory, a symlink is listed and never followed
at the path's end; one earlier in a path is followed, inside the sandbox.

What a host directory gives and a volume does not: a disk quota (the volume shares its engine's
disk, ``AGENT_WORKSPACE_MAX_MB`` does not apply there; uploads are bounded by
``AGENT_MAX_UPLOAD_BYTES``), and writes that appear whole (a file is unpacked in place).
"""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import tarfile
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, BinaryIO, Protocol

from runtime.errors import ConflictError, InputError, NotFoundError, PayloadTooLargeError, UnavailableError
from runtime.workspaces.files import (
    MAX_LIST_DEPTH,
    MAX_LIST_ENTRIES,
    SANDBOX_UID,
    UPLOAD_DIR,
    FileEntry,
    FileTree,
    _printable,
    check_file_name,
    split_path,
)
from sandbox.base import FileTransfer, Sandbox
from sandbox.errors import SandboxError

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

__all__ = ["FileStore", "RemoteWorkspaceFiles", "Upload"]

ROOT = "/workspace"
_TIMEOUT = 60.0  # a listing of MAX_LIST_ENTRIES entries, or a mkdir, on a busy engine
_MAX_LISTING_BYTES = 64 * 1024 * 1024  # MAX_LIST_ENTRIES entries with long paths fit many times over
_CHUNK = 256 * 1024

# Runs in the sandbox as `python3 -I -S -c`: no module of the workspace can stand in for json or os.
# Opens each component of the path without following a symlink, then walks as runtime.workspaces.files does.
_LIST_PROGRAM = r"""
import json, os, stat, sys
parts, limit, max_depth = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
D = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
def done(doc):
    sys.stdout.write(json.dumps(doc))
    sys.exit(0)
fd = os.open("/workspace", os.O_RDONLY | os.O_DIRECTORY)
for i, name in enumerate(parts):
    shown = "/".join(parts[: i + 1])
    try:
        child = os.open(name, D, dir_fd=fd)
    except FileNotFoundError:
        done({"refused": "missing", "path": shown})
    except OSError:
        try:
            link = stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            link = False
        done({"refused": "symlink" if link else "notdir", "path": shown})
    os.close(fd)
    fd = child
out, state = [], {"truncated": False}
def kind(mode):
    if stat.S_ISREG(mode): return "file"
    if stat.S_ISDIR(mode): return "dir"
    if stat.S_ISLNK(mode): return "symlink"
    return "other"
def walk(dfd, prefix, depth):
    with os.scandir(dfd) as scan:
        children = sorted(scan, key=lambda e: e.name)
    for c in children:
        if len(out) == limit:
            state["truncated"] = True
            return
        try:
            st = c.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = prefix + "/" + c.name if prefix else c.name
        k = kind(st.st_mode)
        out.append([path, k, st.st_size if k == "file" else 0, st.st_mtime])
        if k == "dir":
            if depth + 1 >= max_depth:
                state["truncated"] = True
                continue
            try:
                cfd = os.open(c.name, D, dir_fd=dfd)
            except OSError:
                continue
            try:
                walk(cfd, path, depth + 1)
            finally:
                os.close(cfd)
walk(fd, "/".join(parts), 0)
done({"files": out, "truncated": state["truncated"]})
"""


class Upload(Protocol):
    size: int

    async def write(self, chunks: AsyncIterable[bytes]) -> None: ...

    async def commit(self, directory: str, name: str) -> str: ...


class FileStore(Protocol):
    """A workspace's files, wherever they are: :class:`~runtime.workspaces.files.WorkspaceFiles` or a volume."""

    async def list_tree(self, path: str = "") -> FileTree: ...

    async def open_file(self, path: str) -> BinaryIO: ...

    async def read_file(self, path: str, offset: int, limit: int) -> tuple[bytes, int]: ...

    async def write_file(self, path: str, data: bytes) -> str: ...

    def upload(self, limit: int) -> AbstractAsyncContextManager[Upload]: ...


Lease = Callable[[], AbstractAsyncContextManager[Sandbox]]


class RemoteWorkspaceFiles:
    """The files of one workspace whose ``/workspace`` is a volume, through ``lease()``'d sandboxes."""

    def __init__(self, lease: Lease, where: str) -> None:
        self._lease = lease
        self._where = where  # "volume V on engine E", for messages

    async def list_tree(self, path: str = "") -> FileTree:
        parts = split_path(path)
        command = " ".join(
            [
                "python3 -I -S -c",
                shlex.quote(_LIST_PROGRAM),
                shlex.quote(json.dumps(parts)),
                str(MAX_LIST_ENTRIES),
                str(MAX_LIST_DEPTH),
            ]
        )
        out = bytearray()

        async def collect(stream: str, chunk: bytes) -> None:
            if stream == "stdout":
                out.extend(chunk)
                if len(out) > _MAX_LISTING_BYTES:
                    raise UnavailableError(
                        f"the listing of {self._where} is larger than {_MAX_LISTING_BYTES} bytes"
                    )

        async with self._sandbox() as sandbox:
            result = await sandbox.run_bash(command, _TIMEOUT, on_output=collect)
        if not result.success:
            raise UnavailableError(f"listing {self._where} failed: {result.stderr.text[-500:]}")
        try:  # what the sandbox printed is the agent's to tamper with: checked, never trusted
            doc = json.loads(out)
            if "refused" in doc:
                raise _refusal(str(doc["refused"]), str(doc["path"]))
            files = [FileEntry(path=_printable(p), type=k, size=s, modified=m) for p, k, s, m in doc["files"]]
            return FileTree(files=files, truncated=bool(doc["truncated"]))
        except (ValueError, TypeError, KeyError) as e:  # pydantic's ValidationError is a ValueError
            raise UnavailableError(f"the listing of {self._where} came back unreadable: {e}") from None

    async def open_file(self, path: str) -> BinaryIO:
        """The file copied out of the volume into an anonymous temporary file, open for reading."""
        parts = _file_parts(path)
        async with self._sandbox() as sandbox:
            return await asyncio.to_thread(_copy_out, _transfer(sandbox), parts)

    async def read_file(self, path: str, offset: int, limit: int) -> tuple[bytes, int]:
        with await self.open_file(path) as file:
            size = file.seek(0, io.SEEK_END)
            file.seek(offset)
            return file.read(limit), size

    async def write_file(self, path: str, data: bytes) -> str:
        parts = _file_parts(path)
        async with self._sandbox() as sandbox:
            await self._put(sandbox, parts[:-1], parts[-1], io.BytesIO(data), len(data))
        return "/".join(parts)

    @asynccontextmanager
    async def upload(self, limit: int) -> AsyncIterator[Upload]:
        upload = _RemoteUpload(self, limit, await asyncio.to_thread(tempfile.TemporaryFile))
        try:
            yield upload
        finally:
            upload.file.close()

    async def _put(self, sandbox: Sandbox, dirs: list[str], name: str, data: BinaryIO, size: int) -> None:
        """Write ``name`` in ``dirs`` (made if missing); refused if a directory is in its place."""
        directory = "/".join([ROOT, *dirs])
        target = f"{directory}/{name}"
        check = f"mkdir -p -- {shlex.quote(directory)} && if [ -d {shlex.quote(target)} ]; then exit 3; fi"
        result = await sandbox.run_bash(check, _TIMEOUT)
        shown = "/".join([*dirs, name])
        if result.exit_code == 3:
            raise ConflictError(f"{shown} is a directory")
        if not result.success:
            raise InputError(f"cannot write {shown}: {result.stderr.text.strip()[-300:]}")
        archive = _single_file_tar(name, data, size)
        await asyncio.to_thread(_transfer(sandbox).import_archive, directory, archive)

    @asynccontextmanager
    async def _sandbox(self) -> AsyncIterator[Sandbox]:
        """The workspace's sandbox; the backend's failures, there or in the block, are a 503 naming the volume."""
        try:
            async with self._lease() as sandbox:
                yield sandbox
        except SandboxError as e:
            raise UnavailableError(f"the workspace's files ({self._where}) could not be reached: {e}") from e


class _RemoteUpload:
    def __init__(self, files: RemoteWorkspaceFiles, limit: int, file: BinaryIO) -> None:
        self._files = files
        self._limit = limit
        self.file = file
        self.size = 0

    async def write(self, chunks: AsyncIterable[bytes]) -> None:
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > self._limit:
                raise PayloadTooLargeError(f"the file is larger than the upload limit of {self._limit} bytes")
            await asyncio.to_thread(self.file.write, chunk)

    async def commit(self, directory: str, name: str) -> str:
        dirs = [UPLOAD_DIR, *split_path(directory)]
        check_file_name(name)
        self.file.seek(0)
        async with self._files._sandbox() as sandbox:
            await self._files._put(sandbox, dirs, name, self.file, self.size)
        return "/".join([*dirs, name])


def _transfer(sandbox: Sandbox) -> FileTransfer:
    if not isinstance(sandbox, FileTransfer):
        raise UnavailableError("this sandbox backend cannot reach a workspace volume's files")
    return sandbox


def _file_parts(path: str) -> list[str]:
    parts = split_path(path)
    if not parts:
        raise InputError("the workspace root is a directory; give the path of a file")
    return parts


def _refusal(kind: str, shown: str) -> InputError | NotFoundError:
    if kind == "missing":
        return NotFoundError(f"{shown} not found")
    if kind == "symlink":
        return InputError(f"{shown} is a symlink; the files API does not follow symlinks")
    return InputError(f"{shown} is not a directory")


def _copy_out(sandbox: FileTransfer, parts: list[str]) -> BinaryIO:
    shown = "/".join(parts)
    try:
        export = sandbox.export_archive("/".join([ROOT, *parts]))
        with export as (kind, chunks):
            if kind == "symlink":
                raise InputError(f"{shown} is a symlink; the files API does not follow symlinks")
            if kind != "file":
                raise InputError(
                    f"{shown} is {'a directory' if kind == 'dir' else 'not a regular file'}; only files can be downloaded"
                )
            out = tempfile.TemporaryFile()
            try:
                with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:
                    member = tar.next()
                    source = tar.extractfile(member) if member is not None and member.isreg() else None
                    if source is None:
                        raise InputError(f"{shown} is not a regular file; only files can be downloaded")
                    while block := source.read(_CHUNK):
                        out.write(block)
                out.seek(0)
            except BaseException:
                out.close()
                raise
            return out
    except FileNotFoundError:
        raise NotFoundError(f"{shown} not found") from None


def _single_file_tar(name: str, data: BinaryIO, size: int) -> Iterator[bytes]:
    """A tar of one file owned by the sandbox user, streamed from ``data`` (``size`` bytes)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, int(time.time())
    info.uid = info.gid = SANDBOX_UID
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    while block := data.read(_CHUNK):
        yield block
    yield b"\0" * ((-size) % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE)


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (the engine's tar stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(view), len(self._rest))
        view[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n

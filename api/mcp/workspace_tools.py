"""MCP tools over the caller's default workspace: bash and Python in the session's sandbox, files.

Each MCP session gets one sandbox, started on its first command, mounted on the workspace's
directory (so the file tools, the files API and ``run_agent``'s tasks see what it writes), kept
between calls (files, installed packages, background processes), and removed when the session
ends or after ``AGENT_MCP_SANDBOX_IDLE_TIMEOUT`` idle seconds. A sessionless request (protocol
2026-07-28) gets a sandbox for that one call: its files stay, its processes do not.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from api.mcp.tools import Caller, Tool, ToolArgs
from api.web.http import MAX_INT
from runtime.engine import tools as agent_tools
from runtime.engine.runs import LazySandbox
from runtime.engine.tools import ToolConfig, ToolOutcome, run_tool
from runtime.errors import InputError, PayloadTooLargeError
from runtime.workspaces.files import FileTree
from runtime.workspaces.records import DEFAULT_WORKSPACE, Workspaces
from runtime.workspaces.remote_files import FileStore
from runtime.workspaces.sandboxes import WorkspaceSandboxes

__all__ = ["WorkspaceTools"]


# The agent's own argument models (one validation for both surfaces); ToolArgs comes last so its
# config wins: a misspelt argument is an error here, where the agent loop ignores it.
class BashArgs(agent_tools.BashArgs, ToolArgs):
    pass


class PythonArgs(agent_tools.PythonArgs, ToolArgs):
    pass


class ListFilesArgs(ToolArgs):
    path: str = Field(
        "", description="Directory to list, relative to the workspace root (default: the root)."
    )


class ReadFileArgs(ToolArgs):
    path: str = Field(min_length=1, description="File to read, relative to the workspace root.")
    offset: int = Field(
        0, ge=0, le=MAX_INT, description="First byte to read: next_offset of the previous part."
    )
    max_bytes: int | None = Field(
        None, ge=1, le=MAX_INT, description="Most bytes to read (default and cap: the limit)."
    )


class FileContent(BaseModel):
    path: str
    size: int = Field(description="Bytes in the whole file.")
    offset: int = Field(description="Where this part starts.")
    encoding: Literal["utf-8", "base64"] = Field(description="utf-8 when the part is text, else base64.")
    content: str
    next_offset: int | None = Field(description="Where the next part starts; null at the end of the file.")


class WriteFileArgs(ToolArgs):
    path: str = Field(min_length=1, description="File to create or replace, relative to the workspace root.")
    content: str = Field(description="The whole new content.")
    encoding: Literal["utf-8", "base64"] = Field("utf-8", description="How content is encoded.")


class WrittenFile(BaseModel):
    path: str
    size: int = Field(description="Bytes written.")


def _as_text(data: bytes, at_end: bool) -> tuple[str | None, int]:
    """``data`` as text and the bytes that took, or None when it is not UTF-8."""
    try:
        return data.decode(), len(data)
    except UnicodeDecodeError as e:
        if not at_end and e.start > 0 and e.reason == "unexpected end of data":
            return data[: e.start].decode(), e.start  # a character cut by the part's end: in the next
        return None, len(data)


class WorkspaceTools:
    def __init__(
        self, workspaces: Workspaces, sandboxes: WorkspaceSandboxes, commands: ToolConfig, file_bytes: int
    ) -> None:
        self._workspaces = workspaces
        self._sandboxes = sandboxes
        self._commands = commands
        self._file_bytes = file_bytes

    def tools(self) -> list[Tool]:
        sandbox = (
            "in this MCP session's sandbox: a Linux container without network whose working directory "
            "/workspace holds the workspace files. It persists for the session (files, installed "
            f"packages, background processes). Killed after {self._commands.default_timeout:g} s unless "
            f"timeout says otherwise (at most {self._commands.max_timeout:g} s). Returns exit code, "
            "stdout and stderr."
        )
        limit = f"{self._file_bytes} bytes"
        return [
            Tool("run_bash", f"Run a bash command {sandbox}", BashArgs, ToolOutcome, self.run_command),
            Tool("run_python", f"Run Python 3 code {sandbox}", PythonArgs, ToolOutcome, self.run_command),
            Tool(
                "list_files",
                "List the workspace's files, recursively: path (relative to the workspace root), type, "
                "size, modified. Symlinks are listed, never followed.",
                ListFilesArgs,
                FileTree,
                self.list_files,
                read_only=True,
            ),
            Tool(
                "read_file",
                f"Read a workspace file: UTF-8 text as it is, anything else as base64; at most {limit} a "
                "call, so pass next_offset as offset to read on.",
                ReadFileArgs,
                FileContent,
                self.read_file,
                read_only=True,
            ),
            Tool(
                "write_file",
                f"Create or replace a workspace file (missing directories are made) with UTF-8 text or "
                f"base64 bytes; at most {limit}.",
                WriteFileArgs,
                WrittenFile,
                self.write_file,
            ),
        ]

    def end_session(self, owner: str, session: str) -> None:
        """The MCP session ended: its sandbox goes now (or when a command still running in it ends)."""
        self._sandboxes.end(owner, session)

    async def run_command(self, caller: Caller, args: BashArgs | PythonArgs) -> ToolOutcome:
        """run_bash and run_python: the agent's own tool path, in the session's sandbox."""
        files_dir = await self._files_dir(caller.owner)
        name = caller.session or f"call-{uuid.uuid4().hex}"
        try:
            lease = self._sandboxes.lease
            async with LazySandbox(
                lambda: lease(caller.owner, name, files_dir, workspace=DEFAULT_WORKSPACE)
            ) as sandbox:
                return await run_tool(args, sandbox, self._commands)
        finally:
            if caller.session is None:
                self._sandboxes.end(caller.owner, name)

    async def _files_dir(self, owner: str) -> Path:
        await self._workspaces.get(owner, DEFAULT_WORKSPACE)
        return await self._workspaces.files_dir(owner, DEFAULT_WORKSPACE)

    async def _files(self, owner: str) -> FileStore:
        await self._workspaces.get(owner, DEFAULT_WORKSPACE)
        return await self._workspaces.files(owner, DEFAULT_WORKSPACE)

    async def list_files(self, caller: Caller, args: ListFilesArgs) -> FileTree:
        return await (await self._files(caller.owner)).list_tree(args.path)

    async def read_file(self, caller: Caller, args: ReadFileArgs) -> FileContent:
        limit = min(args.max_bytes or self._file_bytes, self._file_bytes)
        data, size = await (await self._files(caller.owner)).read_file(args.path, args.offset, limit)
        text, used = _as_text(data, args.offset + len(data) >= size)
        end = args.offset + used
        return FileContent(
            path=args.path,
            size=size,
            offset=args.offset,
            encoding="base64" if text is None else "utf-8",
            content=base64.b64encode(data).decode() if text is None else text,
            next_offset=end if end < size else None,
        )

    async def write_file(self, caller: Caller, args: WriteFileArgs) -> WrittenFile:
        try:
            data = (
                args.content.encode()
                if args.encoding == "utf-8"
                else base64.b64decode(args.content, validate=True)
            )
        except (UnicodeEncodeError, binascii.Error) as e:
            raise InputError(f"content is not valid {args.encoding}: {e}") from None
        if len(data) > self._file_bytes:
            raise PayloadTooLargeError(
                f"the content is {len(data)} bytes; at most {self._file_bytes} can be written in one call"
            )
        path = await (await self._files(caller.owner)).write_file(args.path, data)
        return WrittenFile(path=path, size=len(data))

"""Workspaces: a user's named directories of files, mounted at ``/workspace`` in their sandboxes.

On disk: ``<data_dir>/workspaces/<owner key>/<workspace id>/``. The owner key is a hash of the
user name, so any user name is a safe directory name; workspace ids are restricted to a safe
charset and length, so no id can name a path outside its owner's directory. With a quota
(``max_mb``), that directory is the mount point of the workspace's own filesystem
(:mod:`runtime.workspaces.volumes`), mounted before anything uses it. With several Docker engines, a
workspace placed on an engine that keeps files in volumes has them there instead, reached through
its sandbox (:mod:`runtime.workspaces.remote_files`); :meth:`Workspaces.files` hands out either.

A workspace's ``python_mode`` says how ``execute_python`` runs in its conversations: ``stateful``
(the default), one persistent interpreter per conversation, or ``fresh``, a new process per call.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import structlog
from pydantic import BaseModel, Field

from runtime.errors import InputError, NotFoundError, UnavailableError
from runtime.store import Store
from runtime.store.workspaces import PythonMode, WorkspaceRecord
from runtime.workspaces.files import WorkspaceFiles
from runtime.workspaces.placement import PlacementRecord, Placements
from runtime.workspaces.remote_files import FileStore, RemoteWorkspaceFiles
from runtime.workspaces.sandboxes import WorkspaceSandboxes
from runtime.workspaces.volumes import WorkspaceVolumes

__all__ = [
    "DEFAULT_WORKSPACE",
    "PythonMode",
    "WorkspaceConfig",
    "WorkspaceRecord",
    "Workspaces",
    "check_workspace_id",
]

log = structlog.get_logger(__name__)

DEFAULT_WORKSPACE = "default"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_workspace_id(workspace_id: str) -> str:
    if not _ID.match(workspace_id) or ".." in workspace_id:
        raise InputError(
            f"invalid workspace_id {workspace_id!r}: 1-64 characters of letters, digits, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return workspace_id


class WorkspaceConfig(BaseModel):
    """Where the workspaces' directories are, and how large each may grow."""

    root: Path = Field(description="Directory holding every user's workspaces.")
    max_mb: int = Field(
        ge=0,
        description="Disk quota of each workspace in MiB, enforced by a loop-mounted filesystem of "
        "that size per workspace (needs root); 0: none, the directories share the data disk.",
    )
    required: bool = Field(
        False,
        description="The operator asked for this quota: a worker that cannot enforce it refuses to start. "
        "Otherwise (the default quota) such a worker runs without quotas and logs why.",
    )


class Workspaces:
    """The workspaces table and the directories behind it."""

    def __init__(
        self,
        store: Store,
        config: WorkspaceConfig,
        sandboxes: WorkspaceSandboxes | None = None,
        placements: Placements | None = None,
    ) -> None:
        self._rows = store.workspaces
        self._root = config.root
        self._volumes = WorkspaceVolumes(config.max_mb) if config.max_mb else None
        self._quota_required = config.required
        # Several engines: a workspace's files may be a volume, reached through its sandbox.
        self._sandboxes = sandboxes
        self._placements = placements

    async def start(self) -> None:
        """Prove the quota can be enforced here.

        A quota the operator set is a promise: a worker that cannot mount refuses to start. The
        default quota is not worth refusing a plain non-root install over: that worker runs
        without quotas and says why, once, at start-up.
        """
        if self._volumes is None:
            return
        try:
            await asyncio.to_thread(self._volumes.check, self._root)
        except UnavailableError as e:
            if self._quota_required:
                raise
            log.warning("workspace_quota_off", reason=str(e))
            self._volumes = None

    async def aclose(self) -> None:
        """Unmount the workspaces' filesystems (their sandboxes are gone by now)."""
        if self._volumes is not None:
            await self._volumes.aclose()

    async def files_dir(self, owner: str, workspace_id: str) -> Path:
        """The workspace's directory, ready for use (made, and mounted if quotas are on).

        Call :meth:`get` first to check access.
        """
        owner_key = hashlib.sha256(owner.encode()).hexdigest()[:16]
        path = self._root / owner_key / check_workspace_id(workspace_id)
        if self._volumes is not None:
            await self._volumes.attach(path)
        else:
            path.mkdir(parents=True, exist_ok=True)
        return path

    async def files(self, owner: str, workspace_id: str) -> FileStore:
        """The workspace's files, where they are: its host directory, or a volume on its engine.

        Call :meth:`get` first to check access. With several engines this places a new workspace
        (its files must be where its first sandbox will be), or moves one off an engine that is gone.
        """
        if self._placements is not None and self._sandboxes is not None:
            placed = await self._placements.locate(owner, workspace_id)
            if placed.volume is not None:
                sandboxes = self._sandboxes
                return RemoteWorkspaceFiles(
                    lambda: sandboxes.lease(owner, workspace_id, None),
                    f"volume {placed.volume} on engine {placed.engine}",
                )
        return WorkspaceFiles(await self.files_dir(owner, workspace_id))

    async def placement(self, owner: str, workspace_id: str) -> PlacementRecord | None:
        """Where the workspace's sandbox and files are, with several engines; None before its first use or with one."""
        return None if self._placements is None else await self._placements.find(owner, workspace_id)

    async def ensure(
        self, owner: str, workspace_id: str, python_mode: PythonMode | None = None
    ) -> WorkspaceRecord:
        """Create the workspace if it does not exist; either way return it, with ``python_mode`` set if given."""
        check_workspace_id(workspace_id)
        await self._rows.insert_if_missing(owner, workspace_id)
        if python_mode is not None:
            await self._rows.set_python_mode(owner, workspace_id, python_mode)
        await self.files_dir(owner, workspace_id)
        return await self.get(owner, workspace_id)

    async def get(self, owner: str, workspace_id: str) -> WorkspaceRecord:
        """The workspace; the user's default one always exists. Another user's is a 404."""
        record = await self._rows.find(owner, workspace_id)
        if record is None and workspace_id == DEFAULT_WORKSPACE:
            # Made on first use, not on every request: a read stays a read.
            await self._rows.insert_if_missing(owner, workspace_id)
            record = await self._rows.find(owner, workspace_id)
        if record is None:
            raise NotFoundError(f"workspace {workspace_id} not found")
        return record

    async def list(self, owner: str) -> list[WorkspaceRecord]:
        await self.get(owner, DEFAULT_WORKSPACE)
        return await self._rows.list(owner)

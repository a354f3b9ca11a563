"""Workspace quotas below HTTP: one loop-mounted ext4 image per workspace, on real mounts (root only)."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from runtime.errors import PayloadTooLargeError, UnavailableError
from runtime.store import Store
from runtime.workspaces.files import SANDBOX_UID, WorkspaceFiles
from runtime.workspaces.records import WorkspaceConfig, Workspaces
from runtime.workspaces.volumes import WorkspaceVolumes, image_of
from tests.mounts import mounts_under, unmount_under

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop mounts need root")

QUOTA_MB = 5
MB = 1024 * 1024


@pytest.fixture
def no_mount_left(tmp_path: Path) -> Iterator[None]:
    yield
    assert unmount_under(tmp_path) == [], "mounts left behind"


@pytest.fixture
async def volumes(no_mount_left: None) -> AsyncIterator[WorkspaceVolumes]:
    volumes = WorkspaceVolumes(QUOTA_MB)
    yield volumes
    await volumes.aclose()


def fill(path: Path, size: int) -> int:
    """Write up to ``size`` bytes to ``path``; how many the disk took before it was full."""
    written = 0
    with open(path, "wb", buffering=0) as file:
        try:
            while written < size:
                written += file.write(b"x" * min(MB, size - written))
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return written


async def test_a_workspace_is_a_filesystem_of_its_quota(tmp_path: Path, volumes: WorkspaceVolumes) -> None:
    directory = tmp_path / "owner" / "ws1"
    await volumes.attach(directory)

    assert mounts_under(directory) == [directory]
    assert os.stat(directory).st_uid == SANDBOX_UID  # the sandbox user's, as a plain directory is
    assert list(directory.iterdir()) == []  # no lost+found in the user's view
    assert image_of(directory).stat().st_size == QUOTA_MB * MB
    written = fill(directory / "fill", 2 * QUOTA_MB * MB)
    assert 0 < written < QUOTA_MB * MB
    assert image_of(directory).stat().st_blocks * 512 <= QUOTA_MB * MB  # the host's disk took no more


async def test_the_images_outlive_the_worker_and_are_mounted_again(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    await volumes.attach(directory)
    (directory / "kept").write_bytes(b"data")
    await volumes.aclose()
    assert mounts_under(directory) == []
    assert list(directory.iterdir()) == []  # the files are in the image, not on the data disk

    restarted = WorkspaceVolumes(QUOTA_MB)
    await restarted.attach(directory)
    try:
        assert (directory / "kept").read_bytes() == b"data"
    finally:
        await restarted.aclose()


async def test_a_worker_that_did_not_unmount_finds_its_mount_and_unmounts_it_at_shutdown(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    attach = f"import asyncio, pathlib; from runtime.workspaces.volumes import WorkspaceVolumes; asyncio.run(WorkspaceVolumes({QUOTA_MB}).attach(pathlib.Path({str(directory)!r})))"
    # A worker that exits without unmounting (its process, and its locks, gone).
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", attach], check=True)
    assert mounts_under(tmp_path) == [directory]
    restarted = WorkspaceVolumes(QUOTA_MB)

    await restarted.attach(directory)
    assert mounts_under(tmp_path) == [directory]  # the same mount, not a second one
    await restarted.aclose()

    assert mounts_under(tmp_path) == []


async def test_a_worker_sharing_the_data_directory_leaves_a_mount_another_worker_uses(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    other = WorkspaceVolumes(QUOTA_MB)  # a second worker on this data directory
    await asyncio.gather(volumes.attach(directory), other.attach(directory))
    assert mounts_under(tmp_path) == [directory]  # one mount, made once
    await other.aclose()
    assert mounts_under(tmp_path) == [directory]  # still the first worker's
    await volumes.aclose()
    assert mounts_under(tmp_path) == []


async def test_a_directory_from_before_quotas_moves_into_its_image(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    (directory / "sub").mkdir(parents=True)
    (directory / "sub" / "a.txt").write_bytes(b"a")
    os.chown(directory / "sub" / "a.txt", SANDBOX_UID, SANDBOX_UID)
    (directory / "link").symlink_to("/etc/passwd")

    await volumes.attach(directory)

    assert mounts_under(directory) == [directory]
    assert (directory / "sub" / "a.txt").read_bytes() == b"a"
    assert os.stat(directory / "sub" / "a.txt").st_uid == SANDBOX_UID
    assert os.readlink(directory / "link") == "/etc/passwd"
    await volumes.aclose()
    assert list(directory.iterdir()) == []  # the old copy is gone from the data disk


async def test_a_directory_from_before_quotas_larger_than_the_quota_is_left_as_it_is(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    directory.mkdir(parents=True)
    (directory / "big").write_bytes(b"x" * (QUOTA_MB + 1) * MB)

    with pytest.raises(PayloadTooLargeError, match="do not fit in its quota of 5 MiB"):
        await volumes.attach(directory)

    assert mounts_under(directory) == []
    assert (directory / "big").stat().st_size == (QUOTA_MB + 1) * MB
    assert sorted(p.name for p in directory.parent.iterdir()) == ["ws1"]  # no image, no staging


def test_the_start_up_check_mounts_a_probe_and_leaves_nothing(tmp_path: Path, no_mount_left: None) -> None:
    WorkspaceVolumes(QUOTA_MB).check(tmp_path / "workspaces")

    assert list((tmp_path / "workspaces").iterdir()) == []


def test_a_worker_that_is_not_root_refuses_to_start_with_a_quota(tmp_path: Path) -> None:
    os.setegid(65534)
    os.seteuid(65534)  # nobody, until set back: the real and saved ids stay root
    try:
        with pytest.raises(UnavailableError, match="needs the worker to run as root") as refused:
            WorkspaceVolumes(QUOTA_MB).check(tmp_path / "workspaces")
    finally:
        os.seteuid(0)
        os.setegid(0)

    assert "set AGENT_WORKSPACE_MAX_MB=0" in str(refused.value)


async def test_an_upload_larger_than_the_space_left_is_refused_and_leaves_nothing(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    await volumes.attach(directory)
    files = WorkspaceFiles(directory)
    left = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize

    with pytest.raises(PayloadTooLargeError, match=r"it has \d+ bytes of disk space left"):
        async with files.upload(limit=100 * MB) as pending:
            await pending.write(chunks(left + 1))

    assert sorted(p.name for p in (directory / "user_upload").iterdir()) == []
    async with files.upload(limit=100 * MB) as pending:  # a file that fits still does
        await pending.write(chunks(1000))
        await pending.commit("", "small.bin")
    assert (directory / "user_upload" / "small.bin").stat().st_size == 1000


async def test_a_disk_filled_by_someone_else_during_an_upload_is_a_413(
    tmp_path: Path, volumes: WorkspaceVolumes
) -> None:
    directory = tmp_path / "owner" / "ws1"
    await volumes.attach(directory)
    files = WorkspaceFiles(directory)

    with pytest.raises(PayloadTooLargeError, match="its disk space is used up"):
        async with files.upload(limit=100 * MB) as pending:
            await pending.write(chunks(MB))
            fill(directory / "agent-fill", QUOTA_MB * MB)  # the agent, meanwhile
            await pending.write(chunks(2 * MB))
            await pending.commit("", "late.bin")

    assert sorted(p.name for p in (directory / "user_upload").iterdir()) == []
    fill(directory / "agent-fill-2", QUOTA_MB * MB)  # what the discarded upload gave back
    with pytest.raises(PayloadTooLargeError, match="its disk space is used up"):
        await files.write_file("notes.txt", b"x" * MB)
    assert not (directory / "notes.txt").exists()


async def chunks(size: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    data = io.BytesIO(b"y" * size)
    while block := data.read(chunk):
        yield block


@pytest.mark.parametrize("required", [True, False])
async def test_a_quota_that_cannot_be_enforced_stops_start_up_only_when_the_operator_set_it(
    tmp_path: Path, required: bool
) -> None:
    config = WorkspaceConfig(root=tmp_path / "workspaces", max_mb=QUOTA_MB, required=required)
    async with Store.open(tmp_path / "db.sqlite3") as store:
        workspaces = Workspaces(store, config)
        os.setegid(65534)
        os.seteuid(65534)  # nobody, as a plain install runs: the probe cannot mount
        try:
            if required:
                with pytest.raises(UnavailableError, match="needs the worker to run as root"):
                    await workspaces.start()
            else:
                with capture_logs() as logs:
                    await workspaces.start()
        finally:
            os.seteuid(0)
            os.setegid(0)
        if required:
            return
        directory = await workspaces.files_dir("alice", "ws1")
        await workspaces.aclose()
    assert directory.is_dir() and not directory.is_mount()  # a plain directory: no quota
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["workspace_quota_off"]

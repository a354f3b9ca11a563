"""SandboxLimits: the tmpfs mounts, which live in the sandbox's memory, must leave room for processes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandbox.base import PROCESS_RESERVE_MB, SandboxLimits


def test_defaults_leave_the_reserve_to_processes() -> None:
    limits = SandboxLimits()
    tmpfs = limits.tmp_size_mb + limits.workspace_size_mb + limits.shm_size_mb
    assert tmpfs * 9 / 8 <= limits.memory_mb - PROCESS_RESERVE_MB


def test_tmpfs_up_to_the_reserve_is_accepted() -> None:
    # 96 MB of tmpfs and 12 MB for their files' metadata leave 64 of 172.
    SandboxLimits(memory_mb=172, tmp_size_mb=16, shm_size_mb=16, workspace_size_mb=64)
    with pytest.raises(ValidationError):
        SandboxLimits(memory_mb=171, tmp_size_mb=16, shm_size_mb=16, workspace_size_mb=64)


def test_tmpfs_that_could_fill_the_memory_is_refused() -> None:
    with pytest.raises(ValidationError, match="must leave 64 MB of it to processes") as refused:
        SandboxLimits(memory_mb=512, workspace_size_mb=512)
    assert "/workspace 512 MB" in str(refused.value)

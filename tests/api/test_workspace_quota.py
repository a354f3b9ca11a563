"""AGENT_WORKSPACE_MAX_MB through the API: the agent's writes and the user's uploads stop at the quota."""

from __future__ import annotations

import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from runtime.workspaces.volumes import image_of
from tests.api.conftest import ALICE, TWO_USER_KEYS, ClientMaker, failure, ok
from tests.api.test_files import download, files_dir, form, listing, upload
from tests.api.test_tasks import follow, start
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.mounts import mounts_under

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.geteuid() != 0, reason="workspace quotas are loop mounts: root only"),
]

Client = TestClient[Any, Any]
QUOTA_MB = 5
MB = 1024 * 1024


@pytest.fixture
async def small(make_client: ClientMaker) -> Client:
    return await make_client(api_keys=TWO_USER_KEYS, workspace_max_mb=QUOTA_MB)


def bash(command: str) -> ToolCalls:
    return ToolCalls([Call("execute_bash", {"command": command})])


async def tool_results(
    client: Client, model_server: ScriptedModelServer, *commands: str
) -> list[dict[str, Any]]:
    """One task running ``commands`` as tool calls, one per turn; their results."""
    model_server.extend([*(bash(command) for command in commands), Reply("done")])
    status, events = await follow(client, (await start(client))["task_id"])
    assert status == "completed"
    return [event["data"] for event in events if event["type"] == "tool_result"]


async def test_a_command_that_fills_the_workspace_gets_no_space_and_the_next_call_works(
    small: Client, model_server: ScriptedModelServer
) -> None:
    filled, after = await tool_results(
        small,
        model_server,
        "dd if=/dev/zero of=/workspace/fill bs=1M count=20",
        "rm /workspace/fill && echo freed > after.txt && cat after.txt",
    )

    assert filled["returncode"] != 0
    assert "No space left on device" in filled["stderr"]
    assert after["returncode"] == 0 and after["stdout"] == "freed\n"
    assert (await small.get("/health")).status == 200
    assert await download(small, "after.txt") == b"freed\n"  # the files API sees the same files
    directory = await files_dir(small, "alice")
    assert image_of(directory).stat().st_blocks * 512 <= QUOTA_MB * MB  # the data disk gave no more


async def test_an_upload_past_the_quota_is_a_413_and_leaves_nothing(small: Client) -> None:
    response = await small.post(
        "/api/v1/files/upload", data=form("big.bin", b"x" * QUOTA_MB * MB), headers=ALICE
    )

    reason = await failure(response, 413)
    assert reason.startswith("the file does not fit in the workspace: it has ")
    assert await listing(small) == [("user_upload", "dir", 0)]  # no temp file left
    await ok(await upload(small, "small.bin", b"x" * 1000))


async def test_a_restarted_worker_mounts_the_workspace_again(
    make_client: ClientMaker, model_server: ScriptedModelServer, tmp_path: Any
) -> None:
    first = await make_client(api_keys=TWO_USER_KEYS, workspace_max_mb=QUOTA_MB)
    await ok(await upload(first, "kept.txt", b"kept\n"))
    await first.close()
    assert mounts_under(tmp_path) == []  # its shutdown unmounted the workspace

    second = await make_client(api_keys=TWO_USER_KEYS, workspace_max_mb=QUOTA_MB)
    (result,) = await tool_results(second, model_server, "cat user_upload/kept.txt")

    assert result["stdout"] == "kept\n"
    assert await download(second, "user_upload/kept.txt") == b"kept\n"

"""The Docker backend against real containers: results, limits, isolation, kills and cleanup."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from sandbox.base import MAX_SOURCE_BYTES, SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import LABEL_INSTANCE, DockerSandbox, DockerSandboxFactory
from sandbox.errors import SandboxStartError
from tests.sandbox.conftest import FactoryMaker, instance_containers

pytestmark = pytest.mark.docker

REQUEST = SandboxRequest(owner="tester", run_id="run-test")


async def _processes(sandbox: DockerSandbox) -> str:
    result = await sandbox.run_bash("ps -eo args=", 10)
    assert result.exit_code == 0, result
    return result.stdout.text


# --- results ------------------------------------------------------------------------------------


async def test_stdout_stderr_and_exit_code(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_bash("echo out; echo err >&2; exit 3", 10)
    assert result.exit_code == 3
    assert result.stdout.text == "out\n"
    assert result.stderr.text == "err\n"
    assert not result.success
    assert 0 < result.duration < 5


async def test_python_call(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_python("import os, sys\nprint(sys.version_info[0], os.getcwd())", 10)
    assert result.success, result
    assert result.stdout.text == "3 /workspace\n"


async def test_source_is_one_argv_string_not_reparsed(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_bash("""printf '%s|' "$0" 'a "b" $c' $'\\t'""", 10)
    assert result.stdout.text == 'bash|a "b" $c|\t|'


async def test_output_cap_keeps_head_and_tail(make_factory: FactoryMaker) -> None:
    async with make_factory(output_limit_bytes=1000).open(REQUEST) as sandbox:
        result = await sandbox.run_python(
            "import sys\nsys.stdout.write('START' + 'x' * 1_000_000 + 'END')", 20
        )
    assert result.exit_code == 0
    assert result.stdout.total_bytes == 1_000_008
    assert result.stdout.truncated_bytes == 1_000_008 - 1000
    assert result.stdout.text.startswith("START")
    assert result.stdout.text.endswith("END")
    assert "bytes truncated" in result.stdout.text


async def test_invalid_utf8_is_replaced(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_bash(r"printf '\xff\xfe'; printf 'ok\xc3' >&2", 10)
    assert result.stdout.text == "\ufffd\ufffd"
    assert result.stdout.total_bytes == 2
    assert result.stderr.text == "ok\ufffd"


async def test_too_long_source_is_refused_before_running(sandbox: DockerSandbox) -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_SOURCE_BYTES}"):
        await sandbox.run_bash("#" * (MAX_SOURCE_BYTES + 1), 10)
    with pytest.raises(ValueError, match="NUL"):
        await sandbox.run_python("print(1)\x00", 10)


# --- timeouts and cancellation ------------------------------------------------------------------


async def test_timeout_kills_the_whole_process_group(sandbox: DockerSandbox) -> None:
    started = time.monotonic()
    result = await sandbox.run_bash("echo before; sleep 100 & sleep 100", 1)
    assert time.monotonic() - started < 5
    assert result.timed_out
    assert result.exit_code is None
    assert result.stdout.text == "before\n"
    assert "sleep 100" not in await _processes(sandbox)


async def test_timeout_also_kills_children_in_their_own_process_group(sandbox: DockerSandbox) -> None:
    # `timeout` moves its child to a new process group; the session kill still finds it.
    result = await sandbox.run_bash("timeout 100 sleep 101", 1)
    assert result.timed_out
    assert "sleep 101" not in await _processes(sandbox)


async def test_cancel_kills_the_process_and_propagates(sandbox: DockerSandbox) -> None:
    task = asyncio.create_task(sandbox.run_bash("sleep 30", 60))
    for _ in range(50):
        if "sleep 30" in await _processes(sandbox):
            break
    else:
        pytest.fail("the command never started")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    assert "sleep 30" not in await _processes(sandbox)


async def test_a_background_child_holding_the_pipe_does_not_hold_the_call(sandbox: DockerSandbox) -> None:
    started = time.monotonic()
    result = await sandbox.run_bash("sleep 30 & echo done", 20)
    assert time.monotonic() - started < 5  # the main process's exit ends the call, not the pipe's
    assert result.exit_code == 0
    assert result.stdout.text == "done\n"


# --- isolation and limits -----------------------------------------------------------------------


async def test_runs_unprivileged_without_network(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_bash(
        "id -u; id -g; ls /sys/class/net; grep CapEff /proc/self/status; test -e /var/run/docker.sock || echo nosock",
        10,
    )
    assert result.stdout.text.split("\n") == ["1000", "1000", "lo", "CapEff:\t0000000000000000", "nosock", ""]
    connect = await sandbox.run_python(
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)", 10
    )
    assert connect.exit_code == 1
    assert "unreachable" in connect.stderr.text


async def test_root_is_read_only_and_scratch_dirs_are_writable(sandbox: DockerSandbox) -> None:
    denied = await sandbox.run_bash("touch /usr/x", 10)
    assert denied.exit_code != 0
    assert "Read-only file system" in denied.stderr.text
    allowed = await sandbox.run_bash(
        "echo hi > /workspace/a && echo hi > /tmp/b && printf '#!/bin/sh\\necho ran\\n' > s.sh "
        "&& chmod +x s.sh && ./s.sh && stat -c %u /workspace",
        10,
    )
    assert allowed.success, allowed
    assert allowed.stdout.text == "ran\n1000\n"


async def test_memory_limit_is_reported_as_oom(make_factory: FactoryMaker) -> None:
    async with make_factory(memory_mb=160).open(REQUEST) as sandbox:
        result = await sandbox.run_python("x = bytearray(256 * 1024 * 1024)\nprint('survived')", 30)
        after = await sandbox.run_bash("echo ok", 10)
        plain_kill = await sandbox.run_bash("kill -KILL $$", 10)
    assert result.exit_code == 137
    assert result.oom_killed
    assert "survived" not in result.stdout.text
    assert after.stdout.text == "ok\n"
    assert plain_kill.exit_code == 137
    assert not plain_kill.oom_killed  # a SIGKILL that was not the OOM killer's


# An anonymous-memory hog: the kernel's OOM reaper frees it the moment the hog is chosen. A memfd
# or tmpfs hog is not reapable (its pages live until the process has fully exited), so under load the
# killer can move on to a second victim before the first is gone; tmpfs sizes keep those out of reach
# (the fill test below), and this test checks the scores that make every command the first choice.
_ANON_HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n"


async def test_commands_are_the_oom_victims_never_the_executor(make_factory: FactoryMaker) -> None:
    async with make_factory(memory_mb=160).open(REQUEST) as sandbox:
        scores = await sandbox.run_bash("cat /proc/self/oom_score_adj /proc/1/oom_score_adj", 10)
        cell = await sandbox.run_python("print(open('/proc/self/oom_score_adj').read())", 10, session="s")
        hog = await sandbox.run_python(_ANON_HOG, 30)
        alive = await sandbox.alive()
        after = await sandbox.run_bash("echo ok", 10)
    assert scores.stdout.text == "1000\n0\n"  # the command, and docker-init (the executor's parent)
    assert cell.stdout.text.strip() == "1000"
    assert hog.exit_code == 137
    assert hog.oom_killed
    assert alive
    assert after.stdout.text == "ok\n"


_MANY_FILES = """
import itertools, os
os.mkdir("{mount}/many")
for n in itertools.count():
    open(f"{mount}/many/{{n}}", "w").close()
"""


async def test_filling_every_tmpfs_says_no_space_and_the_sandbox_lives_on(
    make_factory: FactoryMaker,
) -> None:
    limits = SandboxLimits()  # the defaults: what a /chat run gets
    async with make_factory(**limits.model_dump()).open(REQUEST) as sandbox:
        # Files cost memory beyond their size: empty ones first, till a mount can hold no more.
        fills = [
            await sandbox.run_python(_MANY_FILES.format(mount=mount), 60)
            for mount in ("/workspace", "/tmp", "/dev/shm")
        ]
        emptied = await sandbox.run_bash("rm -r /workspace/many /tmp/many /dev/shm/many", 60)
        fills += [
            await sandbox.run_bash(f"dd if=/dev/zero of={mount}/fill bs=1M count=1024", 60)
            for mount in ("/workspace", "/tmp", "/dev/shm")
        ]
        hog = await sandbox.run_python("x = bytearray(1024 * 1024 * 1024)", 30)
        after = await sandbox.run_python("print('ok')", 10)
        sizes = await sandbox.run_bash(
            "du -sm --apparent-size /workspace/fill /tmp/fill /dev/shm/fill | cut -f1", 10
        )
    for fill in fills:
        assert fill.exit_code != 0, fill
        assert "No space left on device" in fill.stderr.text
        assert not fill.oom_killed
    assert emptied.success, emptied
    assert hog.oom_killed  # with every tmpfs full, a memory hog still takes only itself down
    assert after.stdout.text == "ok\n"
    expected = [limits.workspace_size_mb, limits.tmp_size_mb, limits.shm_size_mb]
    assert sizes.stdout.text.split() == [str(size) for size in expected]


async def test_pids_limit_contains_a_fork_bomb(make_factory: FactoryMaker) -> None:
    async with make_factory(pids=64).open(REQUEST) as sandbox:
        started = time.monotonic()
        bomb = await sandbox.run_bash(":(){ :|:& };:", 5)
        assert time.monotonic() - started < 15
        assert bomb.stderr.total_bytes > 0 or bomb.timed_out
        after = await sandbox.run_bash("echo ok", 10)
    assert after.stdout.text == "ok\n"


# --- workspaces ---------------------------------------------------------------------------------


async def test_bind_mounted_workspace_is_shared_with_the_host(
    make_factory: FactoryMaker, tmp_path: Path
) -> None:
    workspace = tmp_path / "runs" / "r1"  # does not exist yet: the factory creates it
    request = SandboxRequest(owner="tester", run_id="run-ws", workspace_dir=workspace)
    async with make_factory().open(request) as sandbox:
        result = await sandbox.run_bash("echo from-sandbox > out.txt && pwd", 10)
        assert result.success, result
    assert (workspace / "out.txt").read_text() == "from-sandbox\n"
    if os.geteuid() == 0:
        assert workspace.stat().st_uid == 1000


# --- lifecycle ----------------------------------------------------------------------------------


async def test_container_is_labelled_hardened_and_removed_on_exit(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with make_factory().open(SandboxRequest(owner="alice", run_id="run-42")) as sandbox:
        info = docker_client.api.inspect_container(sandbox.id)
    labels, host = info["Config"]["Labels"], info["HostConfig"]
    assert labels["agent-worker"] == "1"
    assert labels[LABEL_INSTANCE] == instance_id
    assert (labels["agent-worker.owner"], labels["agent-worker.run"]) == ("alice", "run-42")
    assert info["Name"].startswith("/aw-run-42-")
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] and host["Init"] and host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024 * 1024
    assert not host["Binds"]
    assert host["LogConfig"]["Type"] == "none"  # the executor's stream is all command output
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(sandbox.id)


async def test_container_is_removed_when_the_body_raises(
    make_factory: FactoryMaker, docker_client: docker.DockerClient
) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with make_factory().open(REQUEST) as sandbox:
            container_id = sandbox.id
            raise RuntimeError("boom")
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(container_id)


@pytest.mark.parametrize(
    ("image", "limits", "cause"),
    [
        ("agent-worker-sandbox:no-such-tag", {}, docker.errors.ImageNotFound),
        (None, {"network": "aw-test-no-such-network"}, docker.errors.APIError),  # fails at start
    ],
)
async def test_failed_start_leaves_nothing_behind(
    make_factory: FactoryMaker,
    docker_client: docker.DockerClient,
    instance_id: str,
    image: str | None,
    limits: dict[str, str],
    cause: type[Exception],
) -> None:
    with pytest.raises(SandboxStartError) as caught:
        async with make_factory(image=image, **limits).open(REQUEST):
            pytest.fail("the sandbox must not open")
    assert isinstance(caught.value.__cause__, cause)
    assert instance_containers(docker_client, instance_id) == []


async def test_cancel_during_start_leaves_nothing_behind(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async def open_and_wait() -> None:
        async with make_factory().open(REQUEST):
            await asyncio.sleep(60)

    for delay in (0.0, 0.05, 0.2):
        task = asyncio.create_task(open_and_wait())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert instance_containers(docker_client, instance_id) == []


async def test_reap_orphans_removes_only_this_instances_containers(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, sandbox_image: str, instance_id: str
) -> None:
    other_instance = f"{instance_id}-other"

    def make(instance: str, command: list[str], start: bool) -> str:
        container = docker_client.containers.create(
            sandbox_image, command, labels={LABEL_INSTANCE: instance}, network_mode="none"
        )
        if start:
            container.start()
        return str(container.id)

    make(instance_id, ["sleep", "infinity"], start=False)  # created
    make(instance_id, ["sleep", "infinity"], start=True)  # running
    exited = make(instance_id, ["true"], start=True)
    docker_client.api.wait(exited, timeout=30)
    other = make(other_instance, ["sleep", "infinity"], start=True)
    try:
        assert await make_factory().reap_orphans() == 3
        assert instance_containers(docker_client, instance_id) == []
        assert [c["Id"] for c in instance_containers(docker_client, other_instance)] == [other]
    finally:
        docker_client.api.remove_container(other, force=True)


async def test_the_factory_tells_the_health_check_what_keeps_sandboxes_from_starting(
    make_factory: FactoryMaker,
) -> None:
    # Nothing listens on port 1. (A missing unix socket would do, but docker-py leaks the socket then.)
    unreachable = docker.DockerClient(base_url="tcp://127.0.0.1:1", version="1.41")
    try:
        down = DockerSandboxFactory(unreachable, "any:tag", SandboxLimits(), "no-instance")
        assert (await down.problem() or "").startswith("docker engine unreachable: ")
    finally:
        unreachable.close()
    assert await make_factory().problem() is None  # a missing image: tests/api/test_models.py

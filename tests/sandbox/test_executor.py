"""The executor inside each sandbox, through DockerSandbox: concurrency, streaming, kills, its death."""

from __future__ import annotations

import asyncio
import time

import docker
import pytest

from sandbox.base import SandboxRequest
from sandbox.docker_engine import backend as docker_backend
from sandbox.docker_engine import execution
from sandbox.docker_engine.backend import DockerSandbox
from sandbox.errors import SandboxExecError
from tests.sandbox.conftest import FactoryMaker

pytestmark = pytest.mark.docker

REQUEST = SandboxRequest(owner="tester", run_id="run-executor")


async def _processes(sandbox: DockerSandbox) -> str:
    result = await sandbox.run_bash("ps -eo args=", 10)
    assert result.exit_code == 0, result
    return result.stdout.text


async def _wait_for_process(sandbox: DockerSandbox, needle: str) -> None:
    for _ in range(100):
        if needle in await _processes(sandbox):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{needle!r} never started")


async def test_calls_in_one_sandbox_run_concurrently(sandbox: DockerSandbox) -> None:
    # The first call can only end once the second one has run: one at a time would time out.
    waiter = asyncio.create_task(
        sandbox.run_bash("until [ -e /tmp/go ]; do sleep 0.05; done; echo waited", 20)
    )
    await _wait_for_process(sandbox, "until [ -e /tmp/go ]")
    others = await asyncio.gather(*(sandbox.run_bash(f"echo {i}", 10) for i in range(5)))
    assert [r.stdout.text for r in others] == [f"{i}\n" for i in range(5)]
    opener = await sandbox.run_bash("touch /tmp/go", 10)
    assert opener.success, opener
    waited = await waiter
    assert waited.success and not waited.timed_out, waited
    assert waited.stdout.text == "waited\n"


async def test_output_is_streamed_before_the_command_ends(sandbox: DockerSandbox) -> None:
    chunks: list[tuple[str, bytes]] = []
    first = asyncio.Event()

    async def on_output(stream: str, chunk: bytes) -> None:
        chunks.append((stream, chunk))
        first.set()

    call = asyncio.create_task(
        sandbox.run_bash(
            "echo a; echo e >&2; until [ -e /tmp/go ]; do sleep 0.05; done; echo b", 20, on_output=on_output
        )
    )
    await asyncio.wait_for(first.wait(), 10)
    assert not call.done()  # output arrived while the command still waits for /tmp/go
    await sandbox.run_bash("touch /tmp/go", 10)
    result = await call
    assert result.success, result
    assert b"".join(c for s, c in chunks if s == "stdout") == b"a\nb\n"
    assert b"".join(c for s, c in chunks if s == "stderr") == b"e\n"
    assert (result.stdout.text, result.stderr.text) == ("a\nb\n", "e\n")


async def test_on_output_sees_everything_while_the_result_keeps_head_and_tail(
    sandbox: DockerSandbox,
) -> None:
    seen = bytearray()

    async def on_output(stream: str, chunk: bytes) -> None:
        seen.extend(chunk)

    result = await sandbox.run_python(
        "import sys\nsys.stdout.write('x' * 3_000_000)", 30, on_output=on_output
    )
    assert result.success, result
    assert len(seen) == result.stdout.total_bytes == 3_000_000
    assert result.stdout.truncated_bytes > 0


async def test_on_output_raising_kills_the_command(sandbox: DockerSandbox) -> None:
    async def on_output(stream: str, chunk: bytes) -> None:
        raise RuntimeError("the consumer broke")

    with pytest.raises(RuntimeError, match="the consumer broke"):
        await sandbox.run_bash("echo start; sleep 33", 30, on_output=on_output)
    assert "sleep 33" not in await _processes(sandbox)


async def test_cancel_kills_the_whole_process_group(sandbox: DockerSandbox) -> None:
    task = asyncio.create_task(sandbox.run_bash("sleep 31 & sleep 32", 60))
    await _wait_for_process(sandbox, "sleep 32")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    processes = await _processes(sandbox)
    assert "sleep 31" not in processes and "sleep 32" not in processes


async def test_timeout_kills_a_child_that_left_the_process_group(sandbox: DockerSandbox) -> None:
    # `set -m` gives each background job a process group of its own, still in the call's session.
    result = await sandbox.run_bash("set -m; sleep 34 & sleep 35", 1)
    assert result.timed_out
    processes = await _processes(sandbox)
    assert "sleep 34" not in processes and "sleep 35" not in processes


async def test_commands_get_no_stdin(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_bash("cat; read -r line; echo read=$?; ls -l /proc/self/fd/0", 5)
    assert not result.timed_out
    assert result.stdout.text.startswith("read=1\n")
    assert result.stdout.text.rstrip().endswith("-> /dev/null")


async def test_a_background_process_neither_holds_the_call_nor_leaks_into_later_calls(
    sandbox: DockerSandbox,
) -> None:
    started = time.monotonic()
    result = await sandbox.run_bash("(sleep 1; echo late; sleep 36) & nohup sleep 37 & echo done", 20)
    assert time.monotonic() - started < 5  # the main process's exit ends the call
    assert result.exit_code == 0
    assert result.stdout.text == "done\n"
    await asyncio.sleep(1.5)  # "late" is written now, into a pipe nobody reports any more
    later = await sandbox.run_bash("echo next", 10)
    assert later.stdout.text == "next\n"
    processes = await _processes(sandbox)
    assert "sleep 36" in processes and "sleep 37" in processes  # they live on with the container


async def test_the_executor_survives_a_command_that_closes_its_output(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_bash("echo before; exec >&- 2>&-; sleep 0.3; exit 4", 10)
    assert result.exit_code == 4
    assert result.stdout.text == "before\n"
    after = await sandbox.run_bash("echo ok", 10)
    assert after.stdout.text == "ok\n"


async def test_the_executor_answers_a_bad_request_and_goes_on(sandbox: DockerSandbox) -> None:
    # The commands can reach the control stream through docker-init's stdin (same uid).
    injected = await sandbox.run_bash(
        """printf '%s\\n' 'not json' '{"kind": "reboot", "id": "x"}' """
        """'{"kind": "run", "id": "y", "argv": [], "timeout": 1}' > /proc/1/fd/0""",
        10,
    )
    assert injected.success, injected
    assert await sandbox.alive()
    after = await sandbox.run_bash("echo ok", 10)
    assert after.stdout.text == "ok\n"


async def test_the_executors_death_fails_calls_and_the_sandbox_is_not_alive(
    sandbox: DockerSandbox,
) -> None:
    assert await sandbox.alive()
    with pytest.raises(SandboxExecError, match="executor is gone"):
        await sandbox.run_bash("pkill -f agent-worker-executor; sleep 30", 20)
    assert not await sandbox.alive()
    with pytest.raises(SandboxExecError, match="executor is gone"):
        await sandbox.run_bash("echo never", 10)


async def test_a_wedged_executor_fails_the_call_soon_after_its_timeout(
    sandbox: DockerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution, "_SLACK", 0.5)
    monkeypatch.setattr(execution, "_STOP_WAIT", 0.5)
    monkeypatch.setattr(docker_backend, "_ANSWER_TIMEOUT", 1.0)
    with pytest.raises(SandboxExecError, match="neither ended nor killed"):
        await sandbox.run_bash("kill -STOP $(pgrep -x python3)", 1)  # the executor stops answering
    assert not await sandbox.alive()


async def test_calls_cost_no_docker_exec(sandbox: DockerSandbox, docker_client: docker.DockerClient) -> None:
    def exec_ids() -> list[str]:
        return docker_client.api.inspect_container(sandbox.id)["ExecIDs"] or []

    assert exec_ids() == []
    await sandbox.run_bash("echo one", 10)
    await sandbox.run_python("print(2)", 10)
    killed = await sandbox.run_bash("kill -KILL $$", 10)  # exit 137: the OOM counter is read too
    timed_out = await sandbox.run_bash("sleep 5", 0.5)  # and a kill
    assert killed.exit_code == 137 and timed_out.timed_out
    assert await sandbox.alive()
    assert exec_ids() == []


# Forks sleepers until the pids limit is full and keeps it full: a slot that frees up is retaken.
_FILL_PIDS = """
import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(100)
            os._exit(0)
    except BlockingIOError:
        time.sleep(0.002)
"""


async def test_a_process_limit_filled_by_an_earlier_call_is_reclaimed(
    make_factory: FactoryMaker, docker_client: docker.DockerClient
) -> None:
    async with make_factory(pids=64).open(REQUEST) as sandbox:
        filler = await sandbox.run_bash(f"python3 -c '{_FILL_PIDS}' & echo started", 20)
        assert filler.stdout.text == "started\n"
        for _ in range(200):  # until the slot the filler's own exit freed is taken again
            stats = docker_client.api.stats(sandbox.id, stream=False, one_shot=True)
            if stats["pids_stats"].get("current") == 64:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the pids limit never filled up")
        after = await sandbox.run_bash("echo ok", 10)
        again = await sandbox.run_bash("echo ok", 10)
    assert after.stdout.text == "ok\n"
    assert "the process limit was full; killed" in after.stderr.text
    assert (again.stdout.text, again.stderr.text) == ("ok\n", "")

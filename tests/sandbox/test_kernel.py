"""Stateful Python through DockerSandbox.run_python(session=...): one persistent kernel per session."""

from __future__ import annotations

import asyncio

import docker
import pytest

from sandbox.docker_engine.backend import DockerSandbox

pytestmark = pytest.mark.docker

WEDGE = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"


async def test_variables_imports_and_open_files_survive_between_calls(sandbox: DockerSandbox) -> None:
    first = await sandbox.run_python(
        "import json\nx = 1\nf = open('/tmp/notes', 'w')\nf.write('a')", 10, session="s"
    )
    assert first.success and not first.state_lost, first
    second = await sandbox.run_python(
        "x += 1\nf.write('b')\nf.close()\nprint(x, json.dumps([x]))", 10, session="s"
    )
    assert second.success, second
    assert second.stdout.text == "2 [2]\n"
    notes = await sandbox.run_bash("cat /tmp/notes", 10)
    assert notes.stdout.text == "ab"


async def test_an_exception_is_a_result_with_its_traceback_and_the_state_stays(
    sandbox: DockerSandbox,
) -> None:
    await sandbox.run_python("kept = 'yes'", 10, session="s")
    failed = await sandbox.run_python("def f():\n    return 1 / 0\nf()", 10, session="s")
    assert failed.exit_code == 1 and not failed.success and not failed.timed_out
    assert "Traceback (most recent call last)" in failed.stderr.text
    assert failed.stderr.text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert 'File "<cell>", line 2, in f' in failed.stderr.text
    after = await sandbox.run_python("print(kept)", 10, session="s")
    assert after.stdout.text == "yes\n" and not after.state_lost


async def test_exit_ends_the_cell_not_the_interpreter(sandbox: DockerSandbox) -> None:
    await sandbox.run_python("kept = 5", 10, session="s")
    exited = await sandbox.run_python("import sys\nsys.exit(3)", 10, session="s")
    assert exited.exit_code == 3 and exited.stderr.text == ""
    after = await sandbox.run_python("print(kept)", 10, session="s")
    assert after.stdout.text == "5\n" and not after.state_lost


async def test_a_call_past_its_timeout_is_interrupted_and_the_state_survives(sandbox: DockerSandbox) -> None:
    await sandbox.run_python("x = 41", 10, session="s")
    hung = await sandbox.run_python(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", 1, session="s"
    )
    assert hung.timed_out and not hung.state_lost and not hung.success
    assert hung.exit_code == 1  # the KeyboardInterrupt, reported like any exception
    assert hung.stdout.text == "sleeping\n"
    assert "KeyboardInterrupt" in hung.stderr.text
    after = await sandbox.run_python("x += 1\nprint(x)", 10, session="s")
    assert after.stdout.text == "42\n" and not after.state_lost


async def test_a_wedged_interpreter_is_killed_and_replaced_and_says_the_state_was_lost(
    sandbox: DockerSandbox,
) -> None:
    await sandbox.run_python("x = 1", 10, session="s")
    pid = (await sandbox.run_python("import os\nprint(os.getpid())", 10, session="s")).stdout.text
    wedged = await sandbox.run_python(WEDGE, 1, session="s")
    assert wedged.timed_out and wedged.state_lost and wedged.exit_code is None
    processes = await sandbox.run_bash("ps -eo pid=", 10)
    assert pid.strip() not in processes.stdout.text.split()  # the wedged interpreter is gone
    after = await sandbox.run_python("print('x' in globals())", 10, session="s")
    assert after.success and after.stdout.text == "False\n"
    assert not after.state_lost  # a new interpreter: nothing more was lost since the last call


async def session_with_x(sandbox: DockerSandbox) -> str:
    """Session ``s``'s interpreter, with ``x`` defined in it; its pid."""
    result = await sandbox.run_python("import os\nx = 1\nprint(os.getpid())", 10, session="s")
    return result.stdout.text.strip()


async def send_signal(sandbox: DockerSandbox, pid: str, signal_name: str) -> None:
    sent = await sandbox.run_bash(f"kill -{signal_name} {pid}", 10)
    assert sent.success, sent


async def test_an_interpreter_that_died_between_calls_is_reported_lost_on_the_next(
    sandbox: DockerSandbox,
) -> None:
    await send_signal(sandbox, await session_with_x(sandbox), "KILL")
    after = await sandbox.run_python("print('x' in globals())", 10, session="s")
    assert after.state_lost and after.stdout.text == "False\n"
    again = await sandbox.run_python("print(1)", 10, session="s")
    assert not again.state_lost


async def test_a_call_whose_interpreter_died_before_it_began_runs_in_a_new_one(
    sandbox: DockerSandbox,
) -> None:
    pid = await session_with_x(sandbox)
    await send_signal(sandbox, pid, "STOP")
    # The call reaches an interpreter that cannot take it, which then dies: none of the call ran.
    call = asyncio.create_task(sandbox.run_python("print('x' in globals())", 10, session="s"))
    await asyncio.sleep(0.3)
    await send_signal(sandbox, pid, "KILL")
    after = await call
    assert after.success and after.state_lost and after.stdout.text == "False\n", after


async def test_an_interpreter_that_exits_during_a_call_loses_its_state(sandbox: DockerSandbox) -> None:
    await sandbox.run_python("x = 1", 10, session="s")
    died = await sandbox.run_python("import os\nprint('bye', flush=True)\nos._exit(7)", 10, session="s")
    assert died.exit_code == 7 and died.state_lost and died.stdout.text == "bye\n"
    after = await sandbox.run_python("print('x' in globals())", 10, session="s")
    assert after.stdout.text == "False\n" and not after.state_lost


async def test_sessions_are_isolated_and_run_concurrently(sandbox: DockerSandbox) -> None:
    await sandbox.run_python("name = 'a'", 10, session="a")
    await sandbox.run_python("name = 'b'", 10, session="b")
    # a waits for a file only b's call creates: one session at a time would time out.
    waiter = asyncio.create_task(
        sandbox.run_python(
            "import os, time\nwhile not os.path.exists('/tmp/go'):\n    time.sleep(0.05)\nprint(name)",
            20,
            session="a",
        )
    )
    other = await sandbox.run_python("open('/tmp/go', 'w').close()\nprint(name)", 10, session="b")
    assert other.stdout.text == "b\n"
    assert (await waiter).stdout.text == "a\n"
    fresh = await sandbox.run_python("print('name' in globals())", 10)
    assert fresh.stdout.text == "False\n"


async def test_a_session_runs_one_call_at_a_time(sandbox: DockerSandbox) -> None:
    from sandbox.errors import SandboxExecError

    first = asyncio.create_task(sandbox.run_python("import time\ntime.sleep(2)", 10, session="s"))
    await asyncio.sleep(0.5)
    with pytest.raises(SandboxExecError, match="session s is running call"):
        await sandbox.run_python("print(1)", 10, session="s")
    assert (await first).success


async def test_output_streams_while_the_cell_runs(sandbox: DockerSandbox) -> None:
    chunks: list[tuple[str, bytes]] = []
    first = asyncio.Event()

    async def on_output(stream: str, chunk: bytes) -> None:
        chunks.append((stream, chunk))
        first.set()

    code = (
        "import os, sys, time\nprint('a')\nprint('e', file=sys.stderr)\n"
        "while not os.path.exists('/tmp/go'):\n    time.sleep(0.05)\nprint('b')"
    )
    call = asyncio.create_task(sandbox.run_python(code, 20, on_output=on_output, session="s"))
    await asyncio.wait_for(first.wait(), 10)
    assert not call.done()
    await sandbox.run_bash("touch /tmp/go", 10)
    result = await call
    assert result.success, result
    assert b"".join(c for s, c in chunks if s == "stdout") == b"a\nb\n"
    assert b"".join(c for s, c in chunks if s == "stderr") == b"e\n"
    assert (result.stdout.text, result.stderr.text) == ("a\nb\n", "e\n")


async def test_a_print_cannot_fake_the_end_of_a_cell(sandbox: DockerSandbox) -> None:
    result = await sandbox.run_python(
        "print('0')\nprint('1\\n0')\nimport time\ntime.sleep(0.3)\nprint('end')", 10, session="s"
    )
    assert result.stdout.text == "0\n1\n0\nend\n"


async def test_cancel_interrupts_the_cell_and_keeps_the_state(sandbox: DockerSandbox) -> None:
    await sandbox.run_python("x = 7", 10, session="s")
    task = asyncio.create_task(sandbox.run_python("import time\ntime.sleep(60)", 60, session="s"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await sandbox.run_python("print(x)", 10, session="s")
    assert after.stdout.text == "7\n" and not after.state_lost


async def test_fresh_mode_starts_a_new_process_per_call(sandbox: DockerSandbox) -> None:
    await sandbox.run_python("x = 1", 10)
    result = await sandbox.run_python("print('x' in globals())", 10)
    assert result.stdout.text == "False\n" and not result.state_lost
    hung = await sandbox.run_python("import time\ntime.sleep(60)", 1)
    assert hung.timed_out and hung.exit_code is None and not hung.state_lost


async def test_kernels_cost_no_docker_exec_and_die_with_their_session_leftovers(
    sandbox: DockerSandbox, docker_client: docker.DockerClient
) -> None:
    await sandbox.run_python("import subprocess\np = subprocess.Popen(['sleep', '38'])", 10, session="s")
    assert "sleep 38" in (await sandbox.run_bash("ps -eo args=", 10)).stdout.text
    await sandbox.run_python(WEDGE, 1, session="s")  # killed with its whole session
    assert "sleep 38" not in (await sandbox.run_bash("ps -eo args=", 10)).stdout.text
    assert docker_client.api.inspect_container(sandbox.id)["ExecIDs"] in (None, [])


async def test_past_the_kernel_cap_the_least_recently_used_session_loses_its_state(
    sandbox: DockerSandbox,
) -> None:
    for i in range(8):  # the executor keeps at most 8 kernels
        await sandbox.run_python(f"x = {i}", 10, session=f"s{i}")
    await sandbox.run_python("x", 10, session="s0")  # now s1 is the least recently used one
    await sandbox.run_python("x = 8", 10, session="s8")  # a 9th session: s1's kernel makes room

    kernels = (await sandbox.run_bash("ps -eo args= | grep -c '^python3 -u -c'", 10)).stdout.text
    assert kernels == "8\n"
    s1 = await sandbox.run_python("print(globals().get('x', 'unset'))", 10, session="s1")
    assert s1.state_lost and s1.stdout.text == "unset\n"
    s0 = await sandbox.run_python("print(x)", 10, session="s0")
    assert not s0.state_lost and s0.stdout.text == "0\n"


async def test_a_cell_writing_junk_to_the_done_pipe_does_not_break_the_executor(
    sandbox: DockerSandbox,
) -> None:
    junk = await sandbox.run_python(
        "import os, time\nos.write(4, b'junk\\n')\ntime.sleep(0.3)", 10, session="s"
    )
    assert junk.exit_code == 1  # ended by the junk line, as a failed cell
    await asyncio.sleep(0.5)  # the cell's own status line arrives with no cell to end
    assert await sandbox.alive()
    after = await sandbox.run_python("print('ok')", 10, session="s")
    assert after.stdout.text == "ok\n" and not after.state_lost

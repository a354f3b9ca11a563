"""The in-memory sandbox keeps the promises of the Sandbox protocol that the fast tier relies on."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.base import SandboxLimits, SandboxRequest
from sandbox.errors import SandboxExecError
from tests.fakes.sandbox import Command, Exit, Fail, FakeSandboxFactory, Hang

REQUEST = SandboxRequest(owner="alice", run_id="run-1")


class Chunks:
    def __init__(self, fail_after: int | None = None) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.fail_after = fail_after

    async def __call__(self, stream: str, data: bytes) -> None:
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise RuntimeError("the reader went away")
        self.seen.append((stream, data))


async def test_output_streams_in_order_and_the_result_is_bounded_to_head_and_tail() -> None:
    factory = FakeSandboxFactory(
        {"big": Exit(stdout="a" * 300 + "b" * 300, stderr="oops", exit_code=2, chunk_bytes=256)},
        SandboxLimits(output_limit_bytes=256),
    )
    chunks = Chunks()
    async with factory.open(REQUEST) as sandbox:
        result = await sandbox.run_bash("big", timeout=5, on_output=chunks)
    assert [(s, len(d)) for s, d in chunks.seen] == [
        ("stdout", 256),
        ("stdout", 256),
        ("stdout", 88),
        ("stderr", 4),
    ]
    assert (result.exit_code, result.success, result.stderr.text) == (2, False, "oops")
    assert (result.stdout.total_bytes, result.stdout.truncated_bytes) == (600, 344)
    assert result.stdout.text.startswith("a" * 128) and result.stdout.text.endswith("b" * 128)


async def test_a_hanging_command_is_killed_at_its_timeout() -> None:
    factory = FakeSandboxFactory({"sleep": Hang(stdout="begun")})
    async with factory.open(REQUEST) as sandbox:
        result = await sandbox.run_python("sleep", timeout=0.01, session="s")
    assert (result.exit_code, result.timed_out, result.stdout.text) == (None, True, "begun")
    assert sandbox.killed == sandbox.calls == [Command("python", "sleep", 0.01, "s")]


async def test_a_canceled_call_is_killed_and_the_cancel_propagates() -> None:
    factory = FakeSandboxFactory({"sleep": Hang()})
    async with factory.open(REQUEST) as sandbox:
        call = asyncio.create_task(sandbox.run_bash("sleep", timeout=3600))
        assert await factory.next_hanging() == Command("bash", "sleep", 3600)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert sandbox.killed == sandbox.calls


async def test_an_on_output_that_raises_ends_the_command_with_its_exception() -> None:
    factory = FakeSandboxFactory({"chatty": Exit(stdout="x" * 100, chunk_bytes=10)})
    async with factory.open(REQUEST) as sandbox:
        with pytest.raises(RuntimeError, match="the reader went away"):
            await sandbox.run_bash("chatty", timeout=5, on_output=Chunks(fail_after=2))
    assert sandbox.killed == sandbox.calls


async def test_unknown_commands_exit_127_and_a_callable_script_sees_every_call() -> None:
    async with FakeSandboxFactory().open(REQUEST) as sandbox:
        result = await sandbox.run_bash("frobnicate", timeout=5)
    assert (result.exit_code, result.stderr.text) == (127, "fake sandbox: frobnicate: command not found\n")
    seen: list[Command] = []

    def script(command: Command) -> Exit:
        seen.append(command)
        return Exit(stdout=command.source.upper())

    async with FakeSandboxFactory(script).open(REQUEST) as sandbox:
        assert (await sandbox.run_bash("shout", timeout=5)).stdout.text == "SHOUT"
    assert seen == [Command("bash", "shout", 5)]


async def test_sources_the_protocol_refuses_raise_value_error_before_running() -> None:
    async with FakeSandboxFactory().open(REQUEST) as sandbox:
        with pytest.raises(ValueError, match="NUL byte"):
            await sandbox.run_bash("echo \x00", timeout=5)
        with pytest.raises(ValueError, match="at most 100000 are allowed"):
            await sandbox.run_python("x" * 100_001, timeout=5)
    assert sandbox.calls == []


async def test_the_factory_records_what_it_opened_and_a_closed_or_dead_sandbox_refuses_work() -> None:
    factory = FakeSandboxFactory({"boom": Fail("the executor died")})
    async with factory.open(REQUEST) as sandbox:
        assert factory.requests == [REQUEST] and factory.open_count == 1 and await sandbox.alive()
        with pytest.raises(SandboxExecError, match="the executor died"):
            await sandbox.run_bash("boom", timeout=5)
        sandbox.dead = True
        assert not await sandbox.alive()
    assert factory.open_count == 0 and sandbox.closed
    with pytest.raises(SandboxExecError, match="is gone"):
        await sandbox.run_bash("true", timeout=5)

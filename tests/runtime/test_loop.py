"""The agent loop against the scripted model server and the in-memory sandbox: no Docker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime.engine.events import (
    Event,
    IterationStarted,
    ModelResponse,
    RunCompleted,
    RunFailed,
    TextChunk,
    ToolCall,
    ToolOutput,
    ToolResult,
)
from runtime.engine.loop import LoopConfig, RunOutcome, run_agent
from runtime.engine.model_client import ModelConfig, OpenAIChatModel
from runtime.engine.runs import LazySandbox
from runtime.engine.tools import ToolConfig
from sandbox.base import SandboxRequest
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.fakes.sandbox import Command, Exit, Fail, FakeSandboxFactory, Hang, Script


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer() as server:
        yield server


async def run(
    server: ScriptedModelServer,
    turns: list[Any],
    script: Script | None = None,
    *,
    max_iterations: int = 5,
    tools: ToolConfig | None = None,
) -> tuple[RunOutcome, ListSink, FakeSandboxFactory]:
    server.extend(turns)
    factory = FakeSandboxFactory(script)
    sink = ListSink()
    model = OpenAIChatModel(ModelConfig(base_url=server.base_url, model="scripted-model", max_retries=0))
    request = SandboxRequest(owner="alice", run_id="run-1")
    try:
        async with LazySandbox(lambda: factory.open(request)) as lazy:
            outcome = await run_agent(
                [{"role": "system", "content": "be brief"}, {"role": "user", "content": "go"}],
                model=model,
                get_sandbox=lazy,
                config=LoopConfig(tools=tools or ToolConfig()),
                max_iterations=max_iterations,
                sink=sink,
            )
    finally:
        await model.aclose()
    return outcome, sink, factory


async def test_a_tool_call_runs_in_the_sandbox_and_its_result_reaches_the_model(
    server: ScriptedModelServer,
) -> None:
    outcome, sink, factory = await run(
        server,
        [ToolCalls([Call("execute_bash", {"command": "echo hi"}, id="c1")]), Reply("it said hi")],
        {"echo hi": Exit(stdout="hi\n")},
    )
    server.assert_script_consumed()
    assert outcome.error is None and outcome.response == "it said hi" and outcome.iterations == 2
    assert [type(e) for e in sink.events if not isinstance(e, (TextChunk, ToolOutput))] == [
        IterationStarted,
        ModelResponse,
        ToolCall,
        ToolResult,
        IterationStarted,
        ModelResponse,
        RunCompleted,
    ]
    assert "".join(c.content for c in sink.of(TextChunk)) == "it said hi"
    assert [(o.tool_call_id, o.stream, o.content) for o in sink.of(ToolOutput)] == [("c1", "stdout", "hi\n")]
    (result,) = sink.of(ToolResult)
    assert (result.tool_call_id, result.success, result.stdout, result.returncode) == ("c1", True, "hi\n", 0)
    # The model's second request carries its own call and the tool's answer to it.
    assistant, tool = server.requests[1]["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "execute_bash",
        "arguments": '{"command": "echo hi"}',
    }
    assert tool["role"] == "tool" and tool["tool_call_id"] == "c1"
    assert tool["content"].startswith("exit code: 0\n") and "stdout:\nhi\n" in tool["content"]
    (sandbox,) = factory.sandboxes
    assert sandbox.calls == [Command("bash", "echo hi", timeout=60.0)]
    assert sandbox.closed
    assert outcome.messages[-1] == {"role": "assistant", "content": "it said hi"}


async def test_a_failing_command_is_a_result_and_the_run_goes_on(server: ScriptedModelServer) -> None:
    outcome, sink, _ = await run(
        server,
        [ToolCalls([Call("execute_bash", {"command": "false"})]), Reply("it failed")],
        {"false": Exit(stderr="nope\n", exit_code=1)},
    )
    assert outcome.error is None and outcome.response == "it failed"
    (result,) = sink.of(ToolResult)
    assert (result.success, result.returncode, result.stderr) == (False, 1, "nope\n")
    assert server.requests[1]["messages"][-1]["content"].startswith("exit code: 1\n")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (Call("execute_bash", "not json {"), "Arguments for execute_bash are not valid JSON"),
        (Call("execute_bash", "[1, 2]"), "Arguments for execute_bash must be a JSON object, got list."),
        (Call("execute_bash", {"timeout": 5}), "Invalid arguments for execute_bash: command: Field required"),
        (
            Call("web_search", {"q": "x"}),
            "Unknown tool 'web_search'. Available tools: execute_bash, execute_python.",
        ),
    ],
    ids=["not-json", "not-an-object", "missing-field", "unknown-tool"],
)
async def test_a_call_the_model_got_wrong_goes_back_to_it_and_opens_no_sandbox(
    server: ScriptedModelServer, call: Call, error: str
) -> None:
    outcome, sink, factory = await run(server, [ToolCalls([call]), Reply("sorry")])
    assert outcome.error is None and outcome.response == "sorry"
    (result,) = sink.of(ToolResult)
    assert result.success is False and result.error.startswith(error)
    assert server.requests[1]["messages"][-1]["content"] == f"Error: {result.error}"
    assert factory.requests == [] or factory.sandboxes[0].calls == []  # a prefetch may open, never run


async def test_a_command_past_its_timeout_is_killed_and_the_model_told(server: ScriptedModelServer) -> None:
    outcome, sink, factory = await run(
        server,
        [ToolCalls([Call("execute_bash", {"command": "sleep 60", "timeout": 30})]), Reply("too slow")],
        {"sleep 60": Hang(stdout="started\n")},
        tools=ToolConfig(max_timeout=0.05),
    )
    assert outcome.error is None
    (result,) = sink.of(ToolResult)
    assert (result.timed_out, result.returncode, result.stdout) == (True, None, "started\n")
    (sandbox,) = factory.sandboxes
    assert sandbox.calls == [Command("bash", "sleep 60", timeout=0.05)]  # clamped to max_timeout
    assert sandbox.killed == sandbox.calls
    assert "note: timed out after 0.05 s" in server.requests[1]["messages"][-1]["content"]


async def test_execute_python_runs_in_the_configured_session(server: ScriptedModelServer) -> None:
    _, sink, factory = await run(
        server,
        [ToolCalls([Call("execute_python", {"code": "print(1)"})]), Reply("1")],
        {"print(1)": Exit(stdout="1\n")},
        tools=ToolConfig(python_session="conv-1"),
    )
    assert factory.sandboxes[0].calls == [Command("python", "print(1)", timeout=60.0, session="conv-1")]
    assert sink.of(ToolResult)[0].stdout == "1\n"


async def test_the_iteration_limit_ends_the_run_as_failed(server: ScriptedModelServer) -> None:
    again = ToolCalls([Call("execute_bash", {"command": "true"})])
    outcome, sink, _ = await run(server, [again, again], {"true": Exit()}, max_iterations=2)
    server.assert_script_consumed()
    assert outcome.iterations == 2
    assert outcome.error == "max_iterations (2) reached before the model gave a final answer"
    assert isinstance(sink.events[-1], RunFailed) and sink.events[-1].error == outcome.error
    assert len(sink.of(ToolResult)) == 2 and not sink.of(RunCompleted)


async def test_a_sandbox_failure_ends_the_run_with_run_failed(server: ScriptedModelServer) -> None:
    outcome, sink, _ = await run(
        server,
        [ToolCalls([Call("execute_bash", {"command": "ls"})])],
        {"ls": Fail("the sandbox executor is gone (its container died)")},
    )
    assert outcome.error is not None and "the sandbox executor is gone (its container died)" in outcome.error
    assert isinstance(sink.events[-1], RunFailed) and not sink.of(ToolResult)


async def test_a_model_error_ends_the_run_with_run_failed(server: ScriptedModelServer) -> None:
    outcome, sink, factory = await run(server, [])  # the server answers 500: script exhausted
    assert outcome.error is not None and outcome.error.startswith("model server returned 500")
    assert [type(e) for e in sink.events] == [IterationStarted, RunFailed]
    assert factory.requests == []


async def test_cancellation_kills_the_running_command_and_propagates(server: ScriptedModelServer) -> None:
    server.add(ToolCalls([Call("execute_bash", {"command": "sleep 60", "timeout": 600})]))
    factory = FakeSandboxFactory({"sleep 60": Hang()})
    sink = ListSink()
    model = OpenAIChatModel(ModelConfig(base_url=server.base_url, model="scripted-model", max_retries=0))
    request = SandboxRequest(owner="alice", run_id="run-1")

    async def go() -> RunOutcome:
        async with LazySandbox(lambda: factory.open(request)) as lazy:
            return await run_agent(
                [{"role": "user", "content": "go"}],
                model=model,
                get_sandbox=lazy,
                config=LoopConfig(),
                max_iterations=5,
                sink=sink,
            )

    try:
        task = asyncio.create_task(go())
        hanging = await factory.next_hanging()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await model.aclose()
    (sandbox,) = factory.sandboxes
    assert sandbox.killed == [hanging] and sandbox.closed
    # The loop does not catch cancellation: the caller records what a canceled run means.
    assert not sink.of(RunCompleted) and not sink.of(RunFailed) and not sink.of(ToolResult)
    assert isinstance(sink.events[-1], ToolCall)

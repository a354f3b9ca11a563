"""Tool-call validation: every model mistake comes back as a rejected outcome, never an exception."""

from __future__ import annotations

import json

import pytest

from runtime.engine.runs import LazySandbox
from runtime.engine.tools import (
    TOOL_SCHEMAS,
    BashArgs,
    PythonArgs,
    ToolConfig,
    ToolOutcome,
    execute_tool_call,
    history_arguments,
    render_for_model,
    run_tool,
    tool_schemas,
)
from runtime.errors import SandboxFailedError
from sandbox.base import MAX_SOURCE_BYTES, Sandbox, SandboxRequest
from sandbox.errors import SandboxStartError
from tests.fakes.sandbox import Command, Exit, Fail, FakeSandboxFactory

# Under the character limit, over the byte limit: what a length check in characters lets through.
WIDE = "é" * (MAX_SOURCE_BYTES // 2 + 1)


async def _no_sandbox() -> Sandbox:
    raise AssertionError("a rejected call must not ask for a sandbox")


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("execute_bash", "{not json", "not valid JSON"),
        ("execute_bash", "[1, 2]", "must be a JSON object"),
        ("execute_bash", "{}", "command: Field required"),
        ("execute_bash", '{"command": 42}', "command: Input should be a valid string"),
        ("execute_bash", '{"command": ""}', "command"),
        ("execute_python", '{"command": "ls"}', "code: Field required"),
        ("execute_python", '{"code": "print(1)", "timeout": -5}', "timeout"),
        ("execute_ruby", '{"code": "puts 1"}', "Unknown tool 'execute_ruby'"),
        ("execute_bash", '{"command": "' + "x" * (MAX_SOURCE_BYTES + 1) + '"}', "at most"),
        ("execute_bash", json.dumps({"command": "echo a\x00b"}), "the command contains a NUL byte"),
        ("execute_python", json.dumps({"code": "print(1)\x00"}), "the code contains a NUL byte"),
        ("execute_bash", json.dumps({"command": f"echo {WIDE}"}), f"bytes; at most {MAX_SOURCE_BYTES}"),
        ("execute_python", json.dumps({"code": f"# {WIDE}"}), f"bytes; at most {MAX_SOURCE_BYTES}"),
        ("execute_bash", '{"command": "echo \\ud800"}', "unable to parse raw data as a unicode"),
    ],
)
async def test_model_mistakes_are_rejected_outcomes(name: str, arguments: str, expected: str) -> None:
    outcome = await execute_tool_call(name, arguments, _no_sandbox, ToolConfig())
    assert outcome.success is False
    assert outcome.error is not None and expected in outcome.error
    assert render_for_model(outcome).startswith("Error: ")


def test_schemas_name_both_tools_with_required_fields() -> None:
    by_name = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}
    assert by_name["execute_bash"]["required"] == ["command"]
    assert by_name["execute_python"]["required"] == ["code"]


def test_history_arguments_replays_only_json_objects() -> None:
    assert history_arguments('{"command": "ls"}') == '{"command": "ls"}'
    assert history_arguments("{broken") == "{}"
    assert history_arguments("[1]") == "{}"


def test_render_reports_timeout_and_truncation() -> None:
    outcome = ToolOutcome(
        success=False, returncode=None, timed_out=True, timeout=3, truncated_bytes=10, stdout="a"
    )
    text = render_for_model(outcome)
    assert "timed out after 3 s" in text
    assert "10 bytes of output were cut" in text
    assert "stdout:\na" in text


async def test_a_tool_outside_the_allowed_set_is_rejected_without_a_sandbox() -> None:
    config = ToolConfig(allowed=("execute_python",))

    outcome = await execute_tool_call("execute_bash", '{"command": "ls"}', _no_sandbox, config)

    assert outcome.error == "Unknown tool 'execute_bash'. Available tools: execute_python."
    assert [s["function"]["name"] for s in tool_schemas(config.allowed)] == ["execute_python"]
    assert tool_schemas(()) == []


def test_render_tells_an_interrupted_interpreter_from_a_lost_one() -> None:
    interrupted = ToolOutcome(success=False, returncode=1, timed_out=True, timeout=5)
    lost = ToolOutcome(success=False, returncode=None, timed_out=True, state_lost=True, timeout=5)

    kept_text, lost_text = render_for_model(interrupted), render_for_model(lost)

    assert "interrupted with KeyboardInterrupt, the Python state was kept" in kept_text
    assert "process group was killed" not in kept_text and "lost" not in kept_text
    assert "variables, imports and open files from earlier calls are lost" in lost_text


@pytest.mark.parametrize(
    ("model", "field"), [(BashArgs, "command"), (PythonArgs, "code")], ids=["bash", "python"]
)
def test_the_argument_models_refuse_what_the_sandbox_cannot_be_handed(
    model: type[BashArgs] | type[PythonArgs], field: str
) -> None:
    assert len(WIDE) < MAX_SOURCE_BYTES  # a character count alone would let it through
    for refused, why in [("a\x00b", "NUL byte"), (WIDE, "bytes; at most"), ("\ud800", "unicode")]:
        with pytest.raises(ValueError, match=why):
            model.model_validate({field: refused})
    model.model_validate({field: "é" * (MAX_SOURCE_BYTES // 2)})  # at the limit: accepted


async def test_run_tool_clamps_the_timeout_and_runs_in_the_given_sandbox() -> None:
    factory = FakeSandboxFactory({"ls": Exit(stdout="a\n")})
    config = ToolConfig(default_timeout=7, max_timeout=30)

    async with LazySandbox(lambda: factory.open(SandboxRequest(owner="alice", run_id="r"))) as sandbox:
        asked_too_much = await run_tool(BashArgs(command="ls", timeout=10_000), sandbox, config)
        asked_nothing = await run_tool(PythonArgs(code="ls"), sandbox, config)

    assert (asked_too_much.stdout, asked_too_much.timeout, asked_nothing.timeout) == ("a\n", 30, 7)
    assert factory.sandboxes[0].calls == [
        Command("bash", "ls", timeout=30),
        Command("python", "ls", timeout=7),
    ]


async def test_a_failing_sandbox_is_a_runtime_error() -> None:
    async def cannot_start() -> Sandbox:
        raise SandboxStartError("no container for you")

    factory = FakeSandboxFactory({"ls": Fail("the sandbox executor is gone")})

    with pytest.raises(SandboxFailedError, match="the sandbox failed: no container for you"):
        await run_tool(BashArgs(command="ls"), cannot_start, ToolConfig())
    async with LazySandbox(lambda: factory.open(SandboxRequest(owner="alice", run_id="r"))) as sandbox:
        with pytest.raises(SandboxFailedError, match="the sandbox failed: the sandbox executor is gone"):
            await run_tool(BashArgs(command="ls"), sandbox, ToolConfig())

"""Tool-call validation: every model mistake comes back as a rejected outcome, never an exception."""

from __future__ import annotations

import pytest

from runtime.engine.tools import (
    MAX_SOURCE_BYTES,
    TOOL_SCHEMAS,
    ToolConfig,
    ToolOutcome,
    execute_tool_call,
    history_arguments,
    render_for_model,
    tool_schemas,
)
from sandbox.base import Sandbox


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

"""``POST /chat`` end to end: real app, real containers, a scripted OpenAI-compatible model."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sandbox.base import MAX_SOURCE_BYTES
from tests.api.conftest import ClientMaker
from tests.fakes import Call, Error, Reply, ScriptedModelServer, ToolCalls, Usage

pytestmark = pytest.mark.both_engines  # every route here reads or writes the store

Client = TestClient[Any, Any]


async def chat(client: Client, message: str = "do it", **extra: Any) -> dict[str, Any]:
    response = await client.post("/chat", json={"message": message, **extra})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def tool_entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in body["logs"] if "tool_call" in entry]


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_answer_without_tools_has_chat_shape(client: Client, model_server: ScriptedModelServer) -> None:
    model_server.add(Reply("Hello!", usage=Usage(prompt_tokens=7, completion_tokens=3)))

    body = await chat(client, "hi", max_iterations=3)

    assert set(body) == {"id", "response", "logs", "usage", "iterations", "processing_time", "error"}
    assert uuid.UUID(body["id"]).version == 4
    assert body["response"] == "Hello!"
    assert body["error"] is None
    assert body["iterations"] == 1
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert body["logs"] == [
        {
            "iteration": 1,
            "response": {
                "content": "Hello!",
                "tool_calls": None,
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            },
        }
    ]
    assert isinstance(body["processing_time"], float)
    sent = model_server.requests[0]
    assert sent["model"] == "scripted-model"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert [t["function"]["name"] for t in sent["tools"]] == ["execute_bash", "execute_python"]
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}
    assert model_server.headers[0]["Authorization"] == "Bearer test-key"


async def test_bash_and_python_tools_run_in_the_sandbox(
    client: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls(
                [
                    Call("execute_bash", {"command": "echo hi > note.txt && whoami && pwd"}),
                    Call("execute_python", {"code": "print(25 * 25, open('note.txt').read().strip())"}),
                ],
                usage=Usage(prompt_tokens=20, completion_tokens=10),
            ),
            Reply("625", usage=Usage(prompt_tokens=40, completion_tokens=2)),
        ]
    )

    body = await chat(client, "What is 25 * 25?")

    assert body["response"] == "625"
    assert body["iterations"] == 2
    assert body["usage"] == {"prompt_tokens": 60, "completion_tokens": 12, "total_tokens": 72}
    model_log, bash_log, python_log, final_log = body["logs"]
    assert model_log["response"]["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in model_log["response"]["tool_calls"]] == [
        "execute_bash",
        "execute_python",
    ]
    assert bash_log["iteration"] == 1
    assert bash_log["tool_call"]["name"] == "execute_bash"
    assert json.loads(bash_log["tool_call"]["arguments"]) == {
        "command": "echo hi > note.txt && whoami && pwd"
    }
    user, cwd = bash_log["result"]["stdout"].split()
    assert user != "root"
    assert cwd == "/workspace"
    assert bash_log["result"] == {
        "success": True,
        "stdout": bash_log["result"]["stdout"],
        "stderr": "",
        "returncode": 0,
    }
    # Same sandbox for both calls; python results carry no returncode (as documented: bash only).
    assert python_log["result"] == {"success": True, "stdout": "625 hi\n", "stderr": ""}
    assert final_log["iteration"] == 2
    assert tool_messages(model_server.requests[1])[1].endswith("stdout:\n625 hi\n\nstderr: (empty)")
    model_server.assert_script_consumed()


async def test_failing_command_is_a_result_not_an_error(
    client: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo oops >&2; exit 3"})]),
            ToolCalls([Call("execute_python", {"code": "raise ValueError('bad')"})]),
            Reply("both failed"),
        ]
    )

    body = await chat(client)

    bash, python = (entry["result"] for entry in tool_entries(body))
    assert bash == {"success": False, "stdout": "", "stderr": "oops\n", "returncode": 3}
    assert python["success"] is False
    assert "ValueError: bad" in python["stderr"]
    assert body["error"] is None
    assert "exit code: 3" in tool_messages(model_server.requests[1])[0]


async def test_timeout_kills_the_command_and_says_so(
    client: Client, model_server: ScriptedModelServer
) -> None:
    model_server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo start; sleep 30; echo never", "timeout": 1})]),
            Reply("it timed out"),
        ]
    )

    body = await chat(client)

    (entry,) = tool_entries(body)
    assert entry["result"]["timed_out"] is True
    assert entry["result"]["success"] is False
    assert entry["result"]["stdout"] == "start\n"
    assert body["processing_time"] < 20
    assert "timed out after 1 s" in tool_messages(model_server.requests[1])[0]


async def test_large_output_is_capped_head_and_tail(
    make_client: ClientMaker, model_server: ScriptedModelServer
) -> None:
    client = await make_client(output_limit=1000)
    model_server.extend(
        [
            ToolCalls(
                [
                    Call(
                        "execute_bash",
                        {"command": "echo HEAD; head -c 200000 /dev/zero | tr '\\0' x; echo; echo TAIL"},
                    )
                ]
            ),
            Reply("done"),
        ]
    )

    body = await chat(client)

    (entry,) = tool_entries(body)
    result = entry["result"]
    assert result["stdout"].startswith("HEAD\n")
    assert result["stdout"].rstrip().endswith("TAIL")
    assert len(result["stdout"].encode()) < 1200
    assert result["truncated_bytes"] > 198_000
    assert "bytes of output were cut" in tool_messages(model_server.requests[1])[0]


async def test_model_mistakes_go_back_to_the_model(client: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend(
        [
            ToolCalls(
                [
                    Call("execute_bash", '{"command": "echo unterminated'),
                    Call("execute_python", {"source": "print(1)"}),
                    Call("launch_rockets", {"count": 3}),
                ]
            ),
            Reply("sorry"),
        ]
    )

    body = await chat(client)

    assert body["error"] is None
    assert body["response"] == "sorry"
    errors = [entry["result"]["error"] for entry in tool_entries(body)]
    assert "not valid JSON" in errors[0]
    assert "code" in errors[1] and "Field required" in errors[1]
    assert "Unknown tool 'launch_rockets'" in errors[2]
    replayed = model_server.requests[1]["messages"]
    assistant = next(m for m in replayed if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["function"]["arguments"] == "{}"  # invalid JSON not replayed
    assert [m.startswith("Error: ") for m in tool_messages(model_server.requests[1])] == [True] * 3


@pytest.mark.parametrize(
    ("command", "refusal"),
    [
        ("echo a\x00b", "the command contains a NUL byte"),
        # Under the limit in characters, over it in UTF-8 bytes (3 a character).
        (": " + "€" * (MAX_SOURCE_BYTES // 3), f"bytes; at most {MAX_SOURCE_BYTES} are allowed"),
    ],
    ids=["nul-byte", "over-the-byte-limit"],
)
async def test_a_command_the_sandbox_cannot_take_goes_back_to_the_model(
    client: Client, model_server: ScriptedModelServer, command: str, refusal: str
) -> None:
    assert len(command) <= MAX_SOURCE_BYTES
    model_server.chunk_chars = 1 << 16  # long arguments in a few deltas
    model_server.extend([ToolCalls([Call("execute_bash", {"command": command})]), Reply("understood")])

    body = await chat(client)

    assert body["error"] is None and body["response"] == "understood"
    [entry] = tool_entries(body)
    assert entry["result"]["success"] is False and refusal in entry["result"]["error"]
    [message] = tool_messages(model_server.requests[1])  # the model's second turn sees why
    assert message.startswith("Error: Invalid arguments for execute_bash: command:") and refusal in message
    model_server.assert_script_consumed()


async def test_max_iterations_stops_the_loop(client: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend([ToolCalls([Call("execute_bash", {"command": f"echo {i}"})]) for i in range(2)])

    body = await chat(client, max_iterations=2)

    assert body["iterations"] == 2
    assert body["error"] == "max_iterations (2) reached before the model gave a final answer"
    assert len(tool_entries(body)) == 2
    model_server.assert_script_consumed()


async def test_rate_limited_model_is_retried(client: Client, model_server: ScriptedModelServer) -> None:
    model_server.extend(
        [
            Error(429, headers={"Retry-After": "0"}, message="slow down"),
            Error(503, message="overloaded"),
            Reply("made it"),
        ]
    )

    body = await chat(client)

    assert body["response"] == "made it"
    assert body["error"] is None
    assert len(model_server.requests) == 3


async def test_client_error_from_model_is_not_retried(
    client: Client, model_server: ScriptedModelServer
) -> None:
    model_server.add(Error(400, message="context length exceeded"))

    body = await chat(client)

    assert "context length exceeded" in body["error"]
    assert len(model_server.requests) == 1


async def test_unreachable_model_ends_the_run_with_an_error(make_client: ClientMaker) -> None:
    client = await make_client(openai_base_url="http://127.0.0.1:9/v1", model_max_retries=1)

    response = await client.post("/chat", json={"message": "hi"})

    assert response.status == 200
    body = await response.json()
    assert body["error"].startswith("model server unreachable after 2 attempts")
    assert body["response"] == ""
    assert body["iterations"] == 1


@pytest.mark.parametrize(
    "server_quirks",
    [
        {"reject_stream_options": True},
        {"arguments_as_object": True, "empty_deltas": True, "omit_usage": True},
    ],
    ids=["rejects-stream-options", "object-args-empty-deltas-no-usage"],
)
async def test_self_hosted_server_quirks(make_client: ClientMaker, server_quirks: dict[str, bool]) -> None:
    async with ScriptedModelServer(**server_quirks) as quirky:
        client = await make_client(openai_base_url=quirky.base_url)
        quirky.extend(
            [ToolCalls([Call("execute_bash", {"command": "echo quirk"})]), Reply("ok"), Reply("again")]
        )

        first = await chat(client)
        second = await chat(client)

    assert first["response"] == "ok"
    assert tool_entries(first)[0]["result"]["stdout"] == "quirk\n"
    assert second["response"] == "again"
    if server_quirks.get("reject_stream_options"):
        # One rejected probe, then the worker remembers not to send stream_options.
        assert ["stream_options" in r for r in quirky.requests] == [True, False, False, False]
    else:
        assert first["usage"]["total_tokens"] == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "body is empty"),
        (b'{"max_iterations": 3}', "message: Field required"),
        (b'{"message": 42}', "message: Input should be a valid string"),
        (b'{"message": ""}', "message: String should have at least 1 character"),
        (
            b'{"message": "x", "max_iterations": 0}',
            "max_iterations: Input should be greater than or equal to 1",
        ),
        (
            b'{"message": "x", "max_iterations": 21}',
            "max_iterations: Input should be less than or equal to 20",
        ),
        (b'{"message": "x", "max_iterations": "5"}', "max_iterations: Input should be a valid integer"),
        (b'{"message": "x", "max_iterations": true}', "max_iterations: Input should be a valid integer"),
        (b'{"message": "x", "max_iteration": 5}', "max_iteration: Extra inputs are not permitted"),
    ],
)
async def test_bad_input_is_a_400_with_a_reason(
    client: Client, model_server: ScriptedModelServer, payload: bytes, reason: str
) -> None:
    response = await client.post("/chat", data=payload, headers={"Content-Type": "application/json"})

    assert response.status == 400
    body = await response.json()
    assert body["success"] is False
    assert reason in body["error"]
    assert model_server.requests == []


async def test_oversized_body_is_a_413(make_client: ClientMaker, model_server: ScriptedModelServer) -> None:
    client = await make_client(max_request_bytes=4096)

    response = await client.post("/chat", json={"message": "x" * 10_000})

    assert response.status == 413
    body = await response.json()
    assert body["success"] is False
    assert "4096" in body["error"] or "too large" in body["error"].lower()
    assert model_server.requests == []


async def test_wrong_method_is_a_405_in_the_error_shape(client: Client) -> None:
    response = await client.get("/chat")

    assert response.status == 405
    assert (await response.json())["success"] is False
    assert response.headers["Allow"] == "POST"


async def test_unknown_path_is_a_404_in_the_error_shape(client: Client) -> None:
    response = await client.get("/nope")

    assert response.status == 404
    assert await response.json() == {"success": False, "error": "Not Found"}

"""Capabilities: the file format, the built-ins, own capabilities per user, and the task a run starts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.cli import main
from api.settings import Settings
from runtime.errors import ConflictError, NotFoundError
from runtime.features.capabilities import (
    BUILTIN_CAPABILITIES,
    MAX_OWN,
    Capabilities,
    CapabilitySpec,
    NewCapability,
    global_capabilities,
    load_capabilities_file,
)
from runtime.store import Store

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def capabilities(store_target: str | Path) -> AsyncIterator[Capabilities]:
    async with Store.open(store_target) as store:
        yield Capabilities(store, global_capabilities(None))


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "capabilities.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_the_file_loads_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            {"id": "b", "name": "B", "allowed_tools": ["execute_python"], "limits": {"max_iterations": 3}},
            {"id": "a", "name": "A", "system_prompt": "Be terse.", "default_input": "Go."},
        ],
    )

    specs = load_capabilities_file(path)

    assert [s.id for s in specs] == ["b", "a"]
    assert specs[0].allowed_tools == ("execute_python",) and specs[0].limits.max_iterations == 3
    assert specs[1].allowed_tools == ("execute_bash", "execute_python") and specs[1].category == "general"
    assert [c.source for c in global_capabilities(specs)] == ["file", "file"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[{", "is not valid JSON"),
        ({"id": "a", "name": "A"}, "must hold a JSON list"),
        ([{"id": "a", "name": "A"}, {"id": "b"}], "entry #2 name: Field required"),
        ([{"id": "a", "name": "A", "limits": {"max_iterations": 0}}], "entry #1 limits.max_iterations"),
        ([{"id": "a", "name": "A", "allowed_tools": ["execute_bash", "execute_bash"]}], "a tool twice"),
        ([{"id": "a", "name": "A", "colour": "red"}], "entry #1 colour: Extra inputs"),
        ([{"id": "a", "name": "A"}, {"id": "a", "name": "A2"}], "capability ids twice: a"),
        ([{"id": "-a", "name": "A"}], "entry #1 id"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path: Path, content: object, problem: str) -> None:
    with pytest.raises(ValueError) as failure:
        load_capabilities_file(write(tmp_path, content))

    assert problem in str(failure.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_capabilities_file(tmp_path / "nope.json")


def test_settings_check_the_file_at_start_up(tmp_path: Path) -> None:
    good = write(tmp_path, [{"id": "one", "name": "One"}])
    assert [c.id for c in Settings(capabilities_file=good).global_capabilities()] == ["one"]
    assert [c.id for c in Settings().global_capabilities()] == [s.id for s in BUILTIN_CAPABILITIES]

    with pytest.raises(ValidationError, match=r"AGENT_CAPABILITIES_FILE: .* is not valid JSON"):
        Settings(capabilities_file=write(tmp_path, "nope"))
    unknown_model = write(tmp_path, [{"id": "one", "name": "One", "model_key": "big"}])
    with pytest.raises(
        ValidationError, match="names model 'big', which is not one of the model keys: default"
    ):
        Settings(capabilities_file=unknown_model)


def test_serve_refuses_a_bad_capabilities_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_CAPABILITIES_FILE", str(write(tmp_path, [{"id": "x"}])))

    assert main(["serve"]) == 2

    error = capsys.readouterr().err
    assert (
        "invalid configuration" in error and "AGENT_CAPABILITIES_FILE" in error and "entry #1 name" in error
    )


async def test_own_capabilities_are_private_and_globals_read_only(capabilities: Capabilities) -> None:
    mine = await capabilities.create("alice", NewCapability(id="mine", name="Mine", category="x"))

    assert [c.id for c in await capabilities.available("alice")][-1] == "mine"
    assert await capabilities.get("alice", "mine") == mine
    assert "mine" not in [c.id for c in await capabilities.available("bob")]
    with pytest.raises(NotFoundError):
        await capabilities.get("bob", "mine")
    with pytest.raises(ConflictError, match="already"):
        await capabilities.create("alice", NewCapability(id="mine", name="Again"))
    with pytest.raises(ConflictError, match="global"):
        await capabilities.create("alice", NewCapability(id="general", name="Mine too"))
    with pytest.raises(ConflictError, match="read-only"):
        await capabilities.delete("alice", "general")
    with pytest.raises(NotFoundError):
        await capabilities.delete("bob", "mine")
    assert [c.id for c in await capabilities.available("alice", category="x")] == ["mine"]
    await capabilities.delete("alice", "mine")
    with pytest.raises(NotFoundError):
        await capabilities.get("alice", "mine")


async def test_an_own_capability_keeps_its_id_when_a_global_one_takes_it_later(
    store_target: str | Path,
) -> None:
    async with Store.open(store_target) as store:
        before = Capabilities(store, global_capabilities([CapabilitySpec(id="g", name="G")]))
        await before.create("alice", NewCapability(id="shared", name="Alice's"))
        after = Capabilities(store, global_capabilities([CapabilitySpec(id="shared", name="Operator's")]))

        assert (await after.get("alice", "shared")).name == "Alice's"
        assert (await after.get("bob", "shared")).name == "Operator's"
        assert [c.name for c in await after.available("alice")] == ["Alice's"]


async def test_the_cap_on_own_capabilities_holds_under_concurrency(capabilities: Capabilities) -> None:
    for number in range(MAX_OWN - 2):
        await capabilities.create("alice", NewCapability(id=f"c{number}", name="n"))

    results = await asyncio.gather(
        *(capabilities.create("alice", NewCapability(id=f"extra{n}", name="n")) for n in range(5)),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, Exception) for r in results) == 2
    assert all("limit reached" in str(r) for r in results if isinstance(r, Exception))


def test_a_capability_becomes_a_task_request() -> None:
    analyst = next(c for c in global_capabilities(None) if c.id == "python-analyst")

    request = analyst.task_request("alice", "2+2?", conversation_id="conv_1", workspace_id="ws")

    assert request.owner == "alice" and request.message == "2+2?"
    assert (request.workspace_id, request.conversation_id) == ("ws", "conv_1")
    assert request.allowed_tools == ("execute_python",) and request.max_iterations == 30
    assert request.system_prompt == analyst.system_prompt and request.run_mode == "fast"

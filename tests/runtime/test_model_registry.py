"""The model registry: one client per key, the default, unknown keys, closing every client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtime.engine.model_client import ModelConfig, ModelRequest
from runtime.engine.model_registry import ModelEntry, ModelRegistry
from runtime.errors import InputError
from tests.fakes import Reply, ScriptedModelServer

HI = ModelRequest([{"role": "user", "content": "hi"}])


@pytest.fixture
async def server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer() as server:
        yield server


def entry(key: str, model: str, base_url: str | None = None) -> ModelEntry:
    return ModelEntry(key=key, config=ModelConfig(model=model, base_url=base_url, max_retries=0))


async def test_get_by_key_and_default_is_the_first_entry() -> None:
    registry = ModelRegistry([entry("fast", "small-model"), entry("smart", "big-model")])
    try:
        assert registry.default_key == "fast"
        assert registry.get(None).name == "small-model"
        assert registry.get("smart").name == "big-model"
        assert registry.get("fast") is registry.get(None)
        assert [e.key for e in registry.entries()] == ["fast", "smart"]
    finally:
        await registry.aclose()


async def test_explicit_default_key() -> None:
    registry = ModelRegistry([entry("fast", "small-model"), entry("smart", "big-model")], "smart")
    try:
        assert registry.default_key == "smart"
        assert registry.get(None).name == "big-model"
    finally:
        await registry.aclose()


async def test_unknown_key_is_an_input_error_naming_the_keys() -> None:
    registry = ModelRegistry([entry("fast", "small-model"), entry("smart", "big-model")])
    try:
        with pytest.raises(InputError, match=r"unknown model 'huge'; available: fast, smart"):
            registry.get("huge")
    finally:
        await registry.aclose()


@pytest.mark.parametrize(
    ("keys", "default"),
    [([], None), (["a", "a"], None), (["a", "b"], "c")],
    ids=["empty", "duplicate", "unknown-default"],
)
def test_inconsistent_entries_are_refused(keys: list[str], default: str | None) -> None:
    with pytest.raises(ValueError, match="model"):
        ModelRegistry([entry(key, "m") for key in keys], default)


async def test_each_entry_talks_to_its_own_server(server: ScriptedModelServer) -> None:
    async with ScriptedModelServer() as other:
        registry = ModelRegistry(
            [entry("a", "model-a", server.base_url), entry("b", "model-b", other.base_url)]
        )
        server.add(Reply("from a"))
        other.add(Reply("from b"))
        try:
            assert (await registry.get("b").complete(HI)).content == "from b"
            assert (await registry.get(None).complete(HI)).content == "from a"
        finally:
            await registry.aclose()
        assert [r["model"] for r in server.requests] == ["model-a"]
        assert [r["model"] for r in other.requests] == ["model-b"]


async def test_aclose_closes_every_client(server: ScriptedModelServer) -> None:
    registry = ModelRegistry([entry("a", "model-a", server.base_url), entry("b", "model-b", server.base_url)])

    await registry.aclose()

    for key in ("a", "b"):
        with pytest.raises(RuntimeError, match="client has been closed"):
            await registry.get(key).complete(HI)
    assert server.requests == []

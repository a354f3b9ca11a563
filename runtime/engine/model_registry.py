"""The models a worker can run with, by key: one :class:`OpenAIChatModel` client per entry.

Callers ask for a key (``None`` for the default); an unknown key is the caller's mistake
(:class:`InputError`) and names the keys that exist. The models handed out are measured
(:class:`~runtime.telemetry.ObservedModel`) when the registry is given the worker's telemetry.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from runtime.engine.model_client import ChatModel, ModelConfig, OpenAIChatModel
from runtime.errors import InputError
from runtime.telemetry import ObservedModel, Telemetry

__all__ = ["ModelEntry", "ModelRegistry"]


class ModelEntry(BaseModel):
    """One configured model: the key callers choose it by, and how to reach it."""

    key: str = Field(description="Name callers choose the model by.")
    description: str = Field("", description="Free text shown in the model list.")
    config: ModelConfig


class ModelRegistry:
    """Owns one client per entry; close them all with :meth:`aclose`."""

    def __init__(
        self, entries: list[ModelEntry], default_key: str | None = None, telemetry: Telemetry | None = None
    ) -> None:
        keys = [entry.key for entry in entries]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError(f"model keys must be present and unique, got {keys}")
        if default_key is not None and default_key not in keys:
            raise ValueError(f"default model {default_key!r} is not one of {keys}")
        self._entries = list(entries)
        self._clients = {entry.key: OpenAIChatModel(entry.config) for entry in entries}
        self._models: dict[str, ChatModel] = dict(self._clients)
        if telemetry is not None:
            self._models = {
                entry.key: ObservedModel(self._clients[entry.key], telemetry, entry.config.base_url)
                for entry in entries
            }
        self._default_key = default_key if default_key is not None else keys[0]

    @property
    def default_key(self) -> str:
        return self._default_key

    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    def get(self, key: str | None) -> ChatModel:
        """The model for ``key`` (the default one for None); :class:`InputError` if there is none."""
        model = self._models.get(self._default_key if key is None else key)
        if model is None:
            raise InputError(f"unknown model {key!r}; available: {', '.join(self._models)}")
        return model

    async def problems(self, timeout: float) -> dict[str, str | None]:
        """Per model key, why its server does not answer its models list (None when it does).

        Keys on one server (the same base URL and key) share one request.
        """
        servers: dict[tuple[str | None, str], list[str]] = {}
        for entry in self._entries:
            servers.setdefault((entry.config.base_url, entry.config.api_key), []).append(entry.key)
        groups = list(servers.values())
        answers = await asyncio.gather(*(self._clients[group[0]].problem(timeout) for group in groups))
        return {key: answer for group, answer in zip(groups, answers, strict=True) for key in group}

    async def aclose(self) -> None:
        for model in self._clients.values():
            await model.aclose()

"""Keyword search of the market for MCP hosts: public capabilities, agents (nodes), open tasks.

A query is words; a hit has every word somewhere in its searchable text (case-insensitive
substrings, so CJK needs no tokenizer). Capabilities: the global ones (every user's) first, then
users' public ones newest first, matched on id, name, description and category, never on a
system prompt. Agents: most trusted first, on id, nickname and capabilities. Tasks: open ones
whose deadline is still to come, newest first, on title, description and required capabilities.
Each list holds at most ``limit`` hits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from runtime.features.capabilities import Capability
from runtime.platform.money import CreditsOut
from runtime.store import Store

__all__ = ["AgentFound", "CapabilityFound", "MarketFinds", "MarketSearch", "TaskFound"]


class CapabilityFound(BaseModel):
    id: str = Field(description="Run it with run_agent's capability_id (an order when it has a price).")
    name: str
    description: str
    category: str
    price: CreditsOut = Field(description="Credits an order costs; 0: free.")
    owner: str | None = Field(description="The node that sells it; null for the worker's global ones.")


class AgentFound(BaseModel):
    id: str
    nickname: str
    kind: str = Field(description="operator | registered | house")
    capabilities: list[str]
    trust_score: float
    completed_tasks: int


class TaskFound(BaseModel):
    task_id: str = Field(description="Accept it with PUT /v1/tasks/{task_id}/accept.")
    title: str
    description: str
    required_capabilities: list[str]
    budget: CreditsOut
    publisher: str
    deadline: float | None = Field(description="Unix seconds; null: none.")


class MarketFinds(BaseModel):
    query: str
    capabilities: list[CapabilityFound]
    agents: list[AgentFound]
    tasks: list[TaskFound]


class MarketSearch:
    def __init__(
        self, store: Store, global_ones: Iterable[Capability], clock: Callable[[], float] = time.time
    ) -> None:
        self._search = store.search
        self._globals = list(global_ones)
        self._clock = clock

    async def find(self, query: str, category: str | None, limit: int) -> MarketFinds:
        terms = query.split()
        found = [_global(c) for c in self._globals if _has_all(c, terms, category)][:limit]
        if len(found) < limit:
            public = await self._search.public_capabilities(terms, category, limit - len(found))
            found += [
                CapabilityFound(
                    id=hit.id,
                    name=hit.name,
                    description=hit.description,
                    category=hit.category,
                    price=hit.price_cents,
                    owner=hit.owner,
                )
                for hit in public
            ]
        agents = [
            AgentFound.model_validate(hit, from_attributes=True)
            for hit in await self._search.nodes(terms, limit)
        ]
        tasks = [
            TaskFound(
                task_id=hit.id,
                title=hit.title,
                description=hit.description,
                required_capabilities=hit.capabilities,
                budget=hit.budget,
                publisher=hit.publisher,
                deadline=hit.deadline,
            )
            for hit in await self._search.open_tasks(terms, self._clock(), limit)
        ]
        return MarketFinds(query=query, capabilities=found, agents=agents, tasks=tasks)


def _has_all(capability: Capability, terms: list[str], category: str | None) -> bool:
    if category is not None and capability.category != category:
        return False
    text = f"{capability.id} {capability.name} {capability.description} {capability.category}".lower()
    return all(term.lower() in text for term in terms)


def _global(capability: Capability) -> CapabilityFound:
    return CapabilityFound(
        id=capability.id,
        name=capability.name,
        description=capability.description,
        category=capability.category,
        price=0,
        owner=None,
    )

"""The registry of nodes (``/v1/agents``): who is on the platform, what they can do, how trusted.

Lists are ordered by trust (highest first), then id, and filtered by one capability and a minimum
trust score, both index lookups in the store. A node edits its own entry only.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from runtime.errors import ForbiddenError, NotFoundError
from runtime.platform.accounts import MAX_CAPABILITIES, CapabilityName
from runtime.store import Store
from runtime.store.platform_nodes import NodeKind, NodeRecord, set_capabilities, update_nickname

__all__ = ["Agent", "AgentPage", "AgentUpdate", "Registry"]


class Agent(BaseModel):
    agent_id: str
    kind: NodeKind = Field(
        description="registered, operator (a user of the worker) or house (its own agent)."
    )
    nickname: str
    capabilities: list[str]
    trust_score: float = Field(ge=0, le=1, description="0-1; see docs/platform.md for the formula.")
    ratings_count: int
    completed_tasks: int
    created_at: float = Field(description="Unix seconds.")

    @classmethod
    def of(cls, record: NodeRecord) -> Agent:
        return cls(agent_id=record.id, **record.model_dump(exclude={"id"}))


class AgentPage(BaseModel):
    items: list[Agent]
    total: int
    page: int
    page_size: int
    has_more: bool


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nickname: str | None = Field(None, min_length=1, max_length=64)
    capabilities: list[CapabilityName] | None = Field(None, max_length=MAX_CAPABILITIES)


class Registry:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(
        self, capability: str | None, min_trust: float | None, page: int, page_size: int
    ) -> AgentPage:
        records, total = await self._store.nodes.list_nodes(capability, min_trust, page, page_size)
        return AgentPage(
            items=[Agent.of(record) for record in records],
            total=total,
            page=page,
            page_size=page_size,
            has_more=(page - 1) * page_size + len(records) < total,
        )

    async def get(self, agent_id: str) -> Agent:
        record = await self._store.nodes.get_node(agent_id)
        if record is None:
            raise NotFoundError(f"no agent {agent_id!r}")
        return Agent.of(record)

    async def update(self, caller: str, agent_id: str, change: AgentUpdate) -> Agent:
        if caller != agent_id:
            await self.get(agent_id)  # an unknown id is a 404 for anyone
            raise ForbiddenError("a node may update its own entry only")
        async with self._store.transaction() as conn:
            if change.nickname is not None and not await update_nickname(conn, agent_id, change.nickname):
                raise NotFoundError(f"no agent {agent_id!r}")
            if change.capabilities is not None:
                await set_capabilities(conn, agent_id, change.capabilities)
        return await self.get(agent_id)

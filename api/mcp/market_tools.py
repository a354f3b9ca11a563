"""MCP tools over the capability market: ``uuagent_search`` (the name MCP clients of such markets
call), keyword search of public capabilities, agents and open tasks (:mod:`runtime.platform.search`).

``search_capabilities`` (:mod:`api.mcp.agent_tools`) stays as it was: the capabilities the caller
can run, paged.
"""

from __future__ import annotations

from pydantic import Field

from api.mcp.tools import Caller, Tool, ToolArgs
from runtime.platform.search import MarketFinds, MarketSearch

__all__ = ["MarketTools"]


class MarketSearchArgs(ToolArgs):
    query: str = Field(
        "",
        max_length=200,
        description="Words that must all appear (any language, e.g. 数据分析); empty: everything, newest first.",
    )
    page_size: int = Field(
        20, ge=1, le=100, description="Most hits of each kind (capabilities, agents, tasks)."
    )
    category: str | None = Field(None, max_length=64, description="Only capabilities of this category.")


class MarketTools:
    def __init__(self, search: MarketSearch) -> None:
        self._search = search

    def tools(self) -> list[Tool]:
        return [
            Tool(
                "uuagent_search",
                "Search the market by keywords: public capabilities (with their price; run one with "
                "run_agent's capability_id), agents (nodes, most trusted first) and open tasks "
                "(newest first). Every word must appear; CJK text is matched as written.",
                MarketSearchArgs,
                MarketFinds,
                self.search,
                read_only=True,
            )
        ]

    async def search(self, caller: Caller, args: MarketSearchArgs) -> MarketFinds:
        return await self._search.find(args.query, args.category, args.page_size)

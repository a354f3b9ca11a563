"""MCP tools as the server runs them: a name, a description, pydantic arguments and result, a handler.

The argument and result models' JSON schemas are the tools' input and output schemas. A call's
arguments are validated before the handler runs; problems the caller caused (bad arguments, an
unknown task or file, a limit) come back as a result with ``isError`` set, which the host shows
its model, and so does a failure of ours, logged with the request id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from api.web.http import describe_validation_error
from runtime.engine.tools import ToolOutcome, render_for_model
from runtime.errors import AgentWorkerError

__all__ = ["Caller", "McpTools", "Tool", "ToolArgs"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    owner: str  # the API user
    session: str | None  # the MCP session; None for a sessionless (2026-07-28) request


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt argument is an error, not ignored


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[ToolArgs]
    result: type[BaseModel]
    run: Callable[[Caller, Any], Awaitable[BaseModel]]
    read_only: bool = False

    def definition(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.args.model_json_schema(),
            output_schema=self.result.model_json_schema(mode="serialization"),
            annotations=types.ToolAnnotations(read_only_hint=self.read_only),
        )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


class McpTools:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._definitions = [tool.definition() for tool in self._tools.values()]

    def definitions(self) -> list[types.Tool]:
        return list(self._definitions)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    async def call(self, caller: Caller, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Run the tool ``name`` (one of these tools) for ``caller``."""
        tool = self._tools[name]
        try:
            args = tool.args.model_validate(arguments or {})
        except ValidationError as e:
            return _error(f"invalid arguments for {name}: {describe_validation_error(e)}")
        try:
            result = await tool.run(caller, args)
        except AgentWorkerError as e:  # a sandbox that failed included: runtime says so in its terms
            return _error(str(e))
        except Exception:
            log.exception("mcp_tool_failed", tool=name)
            return _error("internal error; see the worker log")
        # Command results read as the agent's own model sees them; the rest as their JSON.
        text = render_for_model(result) if isinstance(result, ToolOutcome) else result.model_dump_json()
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content=result.model_dump(mode="json")
        )

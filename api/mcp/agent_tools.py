"""MCP tools over the task API: run the agent on a message, follow or cancel the task, find capabilities.

``run_agent`` starts a task exactly as ``POST /api/v1/messages`` does (in the caller's default
workspace) and waits a bounded time for its answer; a longer task keeps running and the result
says how to follow it (``get_task``), since MCP hosts time a tool call out after a minute or so.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.mcp.tools import Caller, Tool, ToolArgs
from api.web.http import MAX_INT
from runtime.engine.run_modes import RunModeName
from runtime.errors import InputError
from runtime.features.capabilities import Capabilities
from runtime.store import Store
from runtime.tasks.follow import find_task
from runtime.tasks.manager import TaskManager
from runtime.tasks.outcomes import TaskOutcome, wait_for_outcome
from runtime.tasks.requests import TaskRequest, TaskStarter

__all__ = ["AgentTools"]

_PROFILE_FIELDS = ("run_mode", "model_key", "max_iterations")


class RunAgentArgs(ToolArgs):
    message: str = Field(min_length=1, max_length=100_000, description="What the agent should do.")
    conversation_id: str | None = Field(
        None, description="Continue this conversation (from an earlier result); omitted: a new one."
    )
    capability_id: str | None = Field(
        None,
        description="Run as this capability (see search_capabilities): its prompt, model, tools, limits.",
    )
    run_mode: RunModeName | None = Field(
        None, description="fast (default), thinking or deep; not with a capability."
    )
    model_key: str | None = Field(None, description="A model key of the worker; not with a capability.")
    max_iterations: int | None = Field(
        None, ge=1, le=500, description="Most model calls (default 100); not with a capability."
    )
    wait_seconds: float | None = Field(None, ge=0, description="Wait at most this long for the answer.")


class TaskArgs(ToolArgs):
    task_id: str = Field(min_length=1, description="A task id from run_agent.")


class GetTaskArgs(TaskArgs):
    wait_seconds: float | None = Field(None, ge=0, description="Wait at most this long for the answer.")


class AgentRun(TaskOutcome):
    follow: str | None = Field(description="While the task runs: how to get its answer.")


class SearchArgs(ToolArgs):
    query: str = Field(
        "", max_length=200, description="Words that must all appear in the id, name, description or category."
    )
    category: str | None = Field(None, description="Only this category.")
    page: int = Field(1, ge=1, le=MAX_INT, description="Page number, from 1.")
    page_size: int = Field(20, ge=1, le=100, description="Items per page.")


class CapabilityInfo(BaseModel):
    id: str = Field(description="Pass it to run_agent as capability_id.")
    name: str
    description: str
    category: str


class CapabilityPage(BaseModel):
    items: list[CapabilityInfo]
    total: int = Field(description="Capabilities that match, on every page.")
    page: int
    page_size: int
    has_more: bool


class AgentTools:
    def __init__(
        self,
        starter: TaskStarter,
        tasks: TaskManager,
        store: Store,
        capabilities: Capabilities,
        wait: float,
    ) -> None:
        self._starter = starter
        self._tasks = tasks
        self._store = store
        self._capabilities = capabilities
        self._wait = wait

    def tools(self) -> list[Tool]:
        wait = f"{self._wait:g} s"
        return [
            Tool(
                "run_agent",
                "Give the agent a task in plain language. It works on the same workspace files as the "
                "other tools, runs bash and Python in a sandbox of its own, and answers in text. Waits up "
                f"to {wait} for the answer; a longer task keeps running and this returns its task_id: "
                "call get_task to wait for the answer. Pass conversation_id from an earlier result to "
                "continue that conversation.",
                RunAgentArgs,
                AgentRun,
                self.run_agent,
            ),
            Tool(
                "get_task",
                f"Wait up to {wait} for the answer of a task run_agent started; returns the answer, or "
                "the status while it still runs.",
                GetTaskArgs,
                AgentRun,
                self.get_task,
                read_only=True,
            ),
            Tool(
                "cancel_task",
                "Stop a task run_agent started; returns how it ended.",
                TaskArgs,
                AgentRun,
                self.cancel,
            ),
            Tool(
                "search_capabilities",
                "Find the worker's capabilities (named agent profiles) by words and category. Run one "
                "with run_agent's capability_id.",
                SearchArgs,
                CapabilityPage,
                self.search,
                read_only=True,
            ),
        ]

    async def run_agent(self, caller: Caller, args: RunAgentArgs) -> AgentRun:
        started = await self._starter.start(await self._task_request(caller.owner, args))
        return await self._follow(caller.owner, started.record.id, args.wait_seconds)

    async def _task_request(self, owner: str, args: RunAgentArgs) -> TaskRequest:
        if args.capability_id is None:
            fields = args.model_dump(
                include={"message", "conversation_id", *_PROFILE_FIELDS}, exclude_none=True
            )
            return TaskRequest(owner=owner, **fields)
        chosen = [name for name in _PROFILE_FIELDS if getattr(args, name) is not None]
        if chosen:
            raise InputError(
                f"{', '.join(chosen)}: the capability sets these; leave them out or the capability"
            )
        capability = await self._capabilities.get(owner, args.capability_id)
        return capability.task_request(owner, args.message, conversation_id=args.conversation_id)

    async def get_task(self, caller: Caller, args: GetTaskArgs) -> AgentRun:
        return await self._follow(caller.owner, args.task_id, args.wait_seconds)

    async def cancel(self, caller: Caller, args: TaskArgs) -> AgentRun:
        await find_task(self._store, caller.owner, args.task_id)
        await self._tasks.cancel(args.task_id)
        return await self._follow(caller.owner, args.task_id, 0)

    async def _follow(self, owner: str, task_id: str, wait: float | None) -> AgentRun:
        bounded = self._wait if wait is None else min(wait, self._wait)
        outcome = await wait_for_outcome(self._tasks, self._store, owner, task_id, bounded)
        follow = None
        if outcome.status in ("pending", "running"):
            follow = (
                f"The task is still {outcome.status}. Call get_task with task_id {task_id!r} to wait for "
                f"its answer (up to {self._wait:g} s a call), or cancel_task to stop it."
            )
        return AgentRun(**outcome.model_dump(), follow=follow)

    async def search(self, caller: Caller, args: SearchArgs) -> CapabilityPage:
        terms = args.query.lower().split()
        found = [
            capability
            for capability in await self._capabilities.available(caller.owner, args.category)
            if all(
                term
                in f"{capability.id} {capability.name} {capability.description} {capability.category}".lower()
                for term in terms
            )
        ]
        start = (args.page - 1) * args.page_size
        page = found[start : start + args.page_size]
        return CapabilityPage(
            items=[CapabilityInfo.model_validate(capability, from_attributes=True) for capability in page],
            total=len(found),
            page=args.page,
            page_size=args.page_size,
            has_more=start + len(page) < len(found),
        )

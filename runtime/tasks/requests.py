"""Starting a task from what a surface asked for: the one path every surface takes.

``POST /api/v1/messages``, capability invokes, A2A and MCP all describe the work as a
:class:`TaskRequest`; :class:`TaskStarter` checks it (workspace, model, prompt, conversation)
before it creates anything, then hands a :class:`~runtime.tasks.manager.TaskSpec` to the task manager.
A request the task manager refuses (its per-user limit, a draining worker) creates nothing either.
A task taken from the queue by any worker gets its spec back from its stored request
(:meth:`TaskStarter.rebuild`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.engine.loop import LoopConfig
from runtime.engine.model_registry import ModelRegistry
from runtime.engine.run_modes import RUN_MODES, RunModeName
from runtime.engine.tools import ALL_TOOLS, ToolName
from runtime.errors import ConflictError, UnavailableError
from runtime.features.library import Library
from runtime.store import RunRecord
from runtime.tasks.conversations import Conversations
from runtime.tasks.manager import TaskManager, TaskSpec
from runtime.tasks.queue import QueuedRequest
from runtime.workspaces.records import DEFAULT_WORKSPACE, Workspaces

__all__ = ["StartedTask", "TaskRequest", "TaskStarter"]


class TaskRequest(BaseModel):
    owner: str
    message: str
    workspace_id: str = DEFAULT_WORKSPACE
    conversation_id: str | None = Field(None, description="None: a new conversation.")
    run_mode: RunModeName = "fast"
    model_key: str | None = None
    max_iterations: int = 100
    prompt_name: str | None = None
    personalization: str | None = None
    system_prompt: str | None = Field(
        None, description="Replaces the configured system prompt (a capability's)."
    )
    allowed_tools: tuple[ToolName, ...] = ALL_TOOLS
    task_id: str | None = Field(None, description="The task's id when the caller chose it (an order's).")


class StartedTask(BaseModel):
    record: RunRecord
    conversation_id: str


class TaskStarter:
    def __init__(
        self,
        workspaces: Workspaces,
        conversations: Conversations,
        library: Library,
        models: ModelRegistry,
        tasks: TaskManager,
        base: LoopConfig,
    ) -> None:
        self._workspaces = workspaces
        self._conversations = conversations
        self._library = library
        self._models = models
        self._tasks = tasks
        self._base = base

    async def start(self, request: TaskRequest) -> StartedTask:
        owner, workspace_id = request.owner, request.workspace_id
        workspace = await self._workspaces.get(owner, workspace_id)
        # Everything that can refuse the request is checked before anything is created.
        model = self._models.get(request.model_key)
        mode = RUN_MODES[request.run_mode]
        system_prompt = await self._library.compose_system_prompt(
            owner,
            request.system_prompt or self._base.system_prompt,
            request.prompt_name,
            request.personalization,
        )
        if mode.prompt_addendum:
            system_prompt = f"{system_prompt}\n\n{mode.prompt_addendum}"
        if request.conversation_id is None:
            conversation_id = (await self._conversations.create(owner, workspace_id)).conversation_id
        else:
            conversation = await self._conversations.get(owner, workspace_id, request.conversation_id)
            conversation_id = conversation.conversation_id
        # A stateful workspace's conversation keeps one Python interpreter across its messages.
        python_session = conversation_id if workspace.python_mode == "stateful" else None
        tools = self._base.tools.model_copy(
            update={"allowed": request.allowed_tools, "python_session": python_session}
        )
        spec = TaskSpec(
            owner=owner,
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            message=request.message,
            max_iterations=request.max_iterations,
            model=model,
            loop_config=LoopConfig(
                system_prompt=system_prompt, tools=tools, reasoning_effort=mode.reasoning_effort
            ),
            files_dir=await self._workspaces.files_dir(owner, workspace_id),
            task_id=request.task_id,
            model_key=request.model_key,
        )
        try:
            record = await self._tasks.submit(spec)
        except (ConflictError, UnavailableError):
            # The task manager admits or refuses in one step (its limits change while we prepare);
            # a refused request leaves nothing behind, so the conversation made for it goes too.
            if request.conversation_id is None:
                await self._conversations.delete(owner, workspace_id, conversation_id)
            raise
        return StartedTask(record=record, conversation_id=conversation_id)

    async def rebuild(self, task_id: str, request: QueuedRequest) -> TaskSpec:
        """The spec of a queued task, on whichever worker claimed it (a :data:`SpecResolver`).

        Its model is looked up by key in this worker's registry, its files by the workspace's id: an
        unknown model or a deleted workspace is an error, and the task fails instead of running.
        """
        await self._workspaces.get(request.owner, request.workspace_id)  # deleted meanwhile: NotFoundError
        return TaskSpec(
            owner=request.owner,
            workspace_id=request.workspace_id,
            conversation_id=request.conversation_id,
            message=request.message,
            max_iterations=request.max_iterations,
            model=self._models.get(request.model_key),
            loop_config=request.loop_config,
            files_dir=await self._workspaces.files_dir(request.owner, request.workspace_id),
            task_id=task_id,
            model_key=request.model_key,
        )

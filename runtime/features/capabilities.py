"""Capabilities: named agent profiles a task can run as.

A capability fixes what a run of it gets: a system prompt, a model, the tools offered, and limits
(iterations, run mode). There are two kinds, in one namespace per caller:

- global ones, read-only: the built-in profiles, or the entries of the operator's
  ``AGENT_CAPABILITIES_FILE`` (which replaces the built-ins). Every user sees them and the agent
  card lists them as skills.
- a user's own, created over the API and stored in the ``capabilities`` table. A private one (the
  default) only its creator sees. A public one every user sees and may run, ordering it when it
  has a price (:mod:`runtime.platform.orders` pays its owner for each completed order); its system
  prompt stays its owner's (others get it as null: it may hold private instructions). A new own
  capability may not take a global id, nor a public one the id of another public one; if the
  operator later adds a global one with an id a user already has, that user's own keeps the id for
  them. A caller's own capability shadows a global one, which shadows others' public ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from runtime.engine.run_modes import RunModeName
from runtime.engine.tools import ALL_TOOLS, ToolName
from runtime.errors import ConflictError, NotFoundError
from runtime.features.library import NAME_PATTERN
from runtime.platform.money import Credits, CreditsOut
from runtime.store import Store
from runtime.store.capabilities import OwnCapabilityRow, Visibility
from runtime.tasks.requests import TaskRequest
from runtime.workspaces.records import DEFAULT_WORKSPACE

__all__ = [
    "BUILTIN_CAPABILITIES",
    "MAX_OWN",
    "Capabilities",
    "Capability",
    "CapabilityLimits",
    "CapabilitySpec",
    "NewCapability",
    "global_capabilities",
    "load_capabilities_file",
]

MAX_OWN = 200  # own capabilities per user
MAX_PROMPT_CHARS = 20_000
MAX_INPUT_CHARS = 100_000

Source = Literal["builtin", "file", "user"]


class CapabilityLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_iterations: int = Field(50, ge=1, le=500, description="Most model calls in one run.")
    run_mode: RunModeName = Field("fast", description="fast | thinking | deep (see docs/tasks.md).")


class CapabilitySpec(BaseModel):
    """A capability as it is written: an entry of the capabilities file, or a POST body."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=NAME_PATTERN, description="Letters, digits, '.', '_', '-'; 1-64 characters.")
    name: str = Field(min_length=1, max_length=200, description="Human-readable name.")
    description: str = Field("", max_length=2_000, description="What it does, for people and agents.")
    category: str = Field("general", min_length=1, max_length=64, description="Filter key of the list.")
    system_prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="Replaces the worker's system prompt; null keeps it."
    )
    model_key: str | None = Field(
        None, max_length=64, description="A key from GET /api/v1/models; null: default."
    )
    allowed_tools: tuple[ToolName, ...] = Field(
        ALL_TOOLS, description="Tools offered to the model: execute_bash, execute_python (may be empty)."
    )
    limits: CapabilityLimits = Field(default_factory=CapabilityLimits)
    default_input: str | None = Field(
        None,
        max_length=MAX_INPUT_CHARS,
        description="The message of a run invoked without one; null: a message is required.",
    )

    @field_validator("allowed_tools")
    @classmethod
    def _unique_tools(cls, value: tuple[ToolName, ...]) -> tuple[ToolName, ...]:
        if len(set(value)) != len(value):
            raise ValueError("allowed_tools lists a tool twice")
        return value


class NewCapability(CapabilitySpec):
    """A capability a user creates: a spec, who may see it, and what an order of it costs."""

    visibility: Visibility = Field(
        "private", description="private: yours only; public: listed and orderable by every user."
    )
    price: Credits = Field(0, description="Credits each order of it pays you (public ones); 0: free.")


class Capability(CapabilitySpec):
    source: Source = Field(description="builtin | file (global, read-only) | user (a user's own).")
    created_at: float | None = Field(None, description="When it was created; null for global ones.")
    owner: str | None = Field(None, description="The user who created it; null for global ones.")
    visibility: Visibility = Field("public", description="private: its owner's only; public: everyone's.")
    price: CreditsOut = Field(0, description="Credits an order of it costs (paid to its owner).")

    def shown_to(self, user: str) -> Capability:
        """As ``user`` may see it: another user's capability without its system prompt."""
        if self.owner is None or self.owner == user:
            return self
        return self.model_copy(update={"system_prompt": None})

    def sold_to(self, user: str) -> bool:
        """Running it as ``user`` is an order: someone else's capability with a price."""
        return self.owner is not None and self.owner != user and self.price > 0

    def task_request(
        self,
        owner: str,
        message: str,
        *,
        conversation_id: str | None = None,
        workspace_id: str = DEFAULT_WORKSPACE,
    ) -> TaskRequest:
        """The task a run of this capability starts, with this capability's profile."""
        return TaskRequest(
            owner=owner,
            message=message,
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            run_mode=self.limits.run_mode,
            model_key=self.model_key,
            max_iterations=self.limits.max_iterations,
            system_prompt=self.system_prompt,
            allowed_tools=self.allowed_tools,
        )


BUILTIN_CAPABILITIES: list[CapabilitySpec] = [
    CapabilitySpec(
        id="general",
        name="General agent",
        description="Answers any request, running bash and Python in a sandbox when that helps.",
        category="general",
    ),
    CapabilitySpec(
        id="python-analyst",
        name="Python analyst",
        description="Computes, analyses data and checks claims by writing and running Python only.",
        category="data-analysis",
        system_prompt=(
            "You are a careful data analyst. Solve every task by writing Python and running it with "
            "execute_python in the sandbox (working directory /workspace, no network). Compute results "
            "rather than estimating them, check them, and answer with the figures and a short "
            "explanation of how you got them."
        ),
        allowed_tools=("execute_python",),
        limits=CapabilityLimits(max_iterations=30),
    ),
    CapabilitySpec(
        id="sandbox-report",
        name="Sandbox report",
        description="Reports the sandbox environment: OS, Python version and the command-line tools present.",
        category="diagnostics",
        allowed_tools=("execute_bash",),
        limits=CapabilityLimits(max_iterations=10),
        default_input=(
            "Report the sandbox environment: operating system, Python version, and which of git, curl, "
            "jq, zip and sqlite3 are installed. Check with execute_bash; answer in a short list."
        ),
    ),
]

_SPECS = TypeAdapter(list[CapabilitySpec])


def load_capabilities_file(path: Path) -> list[CapabilitySpec]:
    """The capabilities of a JSON file (a list of capability objects); ValueError says what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(raw, list):
        raise ValueError(f"{path} must hold a JSON list of capabilities, got {type(raw).__name__}")
    try:
        specs = _SPECS.validate_python(raw)
    except ValidationError as e:
        problems = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in e.errors())
        raise ValueError(f"{path} has invalid capabilities: {problems}") from None
    ids = [spec.id for spec in specs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path} defines these capability ids twice: {', '.join(duplicates)}")
    return specs


def _where(loc: tuple[int | str, ...]) -> str:
    if not loc or not isinstance(loc[0], int):
        return "the list"
    field = ".".join(str(part) for part in loc[1:])
    return f"entry #{loc[0] + 1}" + (f" {field}" if field else "")


def global_capabilities(file_specs: list[CapabilitySpec] | None) -> list[Capability]:
    """The file's capabilities, or the built-in ones when no file is configured."""
    source: Source = "builtin" if file_specs is None else "file"
    specs = BUILTIN_CAPABILITIES if file_specs is None else file_specs
    return [Capability(**spec.model_dump(), source=source) for spec in specs]


class Capabilities:
    """The global capabilities (in memory) and every user's own (the ``capabilities`` table)."""

    def __init__(self, store: Store, global_ones: Iterable[Capability]) -> None:
        self._rows = store.capabilities
        self._globals = {c.id: c for c in global_ones}

    def global_ones(self) -> list[Capability]:
        return list(self._globals.values())

    async def available(self, owner: str, category: str | None = None) -> list[Capability]:
        """Global ones in configured order, the owner's own by creation, then others' public ones
        newest first (without their system prompts); an id shows once, as :meth:`get` finds it."""
        own = await self._own(owner)
        own_ids = {c.id for c in own}
        shadowed = own_ids | set(self._globals)
        public = [_own_capability(row).shown_to(owner) for row in await self._rows.list_public(owner)]
        items = (
            [c for c in self._globals.values() if c.id not in own_ids]
            + own
            + [c for c in public if c.id not in shadowed]
        )
        return [c for c in items if category is None or c.category == category]

    async def get(self, owner: str, capability_id: str) -> Capability:
        """The capability ``owner`` runs under this id, whole (a surface shows it with :meth:`Capability.shown_to`)."""
        row = await self._rows.find(owner, capability_id)
        if row is not None:
            return _own_capability(row)
        found = self._globals.get(capability_id)
        if found is not None:
            return found
        public = await self._rows.find_public(capability_id)
        if public is None:
            raise NotFoundError(f"capability {capability_id!r} not found")
        return _own_capability(public)

    async def create(self, owner: str, spec: NewCapability) -> Capability:
        if spec.id in self._globals:
            raise ConflictError(f"capability id {spec.id!r} is taken by a global capability; choose another")
        now = time.time()
        body = CapabilitySpec.model_validate(spec.model_dump(exclude={"visibility", "price"}))
        # The cap is checked in the INSERT itself, so concurrent creates cannot pass it.
        outcome = await self._rows.insert(
            owner, spec.id, body.model_dump_json(), now, MAX_OWN, spec.visibility, spec.price
        )
        if outcome == "exists":
            taken = "you already have" if spec.visibility == "private" else "you or a public one has"
            raise ConflictError(f"{taken} a capability {spec.id!r}; choose another id")
        if outcome == "limit":
            raise ConflictError(f"capability limit reached: {MAX_OWN} per user; delete one first")
        return Capability(
            **body.model_dump(),
            source="user",
            created_at=now,
            owner=owner,
            visibility=spec.visibility,
            price=spec.price,
        )

    async def delete(self, owner: str, capability_id: str) -> None:
        """Delete the owner's own capability; a global one is read-only (:class:`ConflictError`)."""
        if await self._rows.delete(owner, capability_id):
            return
        if capability_id in self._globals:
            raise ConflictError(f"capability {capability_id!r} is configured by the operator and read-only")
        raise NotFoundError(f"capability {capability_id!r} not found")

    async def _own(self, owner: str) -> list[Capability]:
        return [_own_capability(row) for row in await self._rows.list(owner)]


def _own_capability(row: OwnCapabilityRow) -> Capability:
    spec = CapabilitySpec.model_validate_json(row.spec)
    return Capability(
        **spec.model_dump(),
        source="user",
        created_at=row.created_at,
        owner=row.owner,
        visibility=row.visibility,
        price=row.price_cents,
    )

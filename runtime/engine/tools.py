"""The tools the model may call, their JSON schemas, and how a call becomes a result.

One path for every surface: the agent loop parses the model's call with
:func:`execute_tool_call`, the MCP tools validate :class:`BashArgs` / :class:`PythonArgs`
themselves, and both run the call with :func:`run_tool` (the same timeout clamp, the same
sandbox calls).

Anything wrong with a call that the *model* caused (arguments that are not JSON, a missing field,
an unknown tool, a command the sandbox could not be handed) becomes a :class:`ToolOutcome` with
``error`` set, sent back to the model; the run goes on. Failures of the sandbox itself become a
:class:`~runtime.errors.SandboxFailedError`, which ends the run.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Protocol

import structlog
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from runtime.errors import SandboxFailedError, describe_validation_error
from sandbox.base import MAX_SOURCE_BYTES, ExecResult, OnOutput, Sandbox, SandboxLimits, validate_source
from sandbox.errors import SandboxError

__all__ = [
    "ALL_TOOLS",
    "TOOL_SCHEMAS",
    "BashArgs",
    "PythonArgs",
    "SandboxSource",
    "ToolArgs",
    "ToolConfig",
    "ToolName",
    "ToolOutcome",
    "execute_tool_call",
    "history_arguments",
    "render_for_model",
    "run_tool",
    "tool_schemas",
]

log = structlog.get_logger(__name__)


ToolName = Literal["execute_bash", "execute_python"]
ALL_TOOLS: tuple[ToolName, ...] = ("execute_bash", "execute_python")


class ToolConfig(BaseModel):
    """Which tools a run offers, and the timeouts applied to their calls."""

    allowed: tuple[ToolName, ...] = Field(ALL_TOOLS, description="Tools offered to the model.")
    default_timeout: float = Field(
        60.0, gt=0, description="Seconds a call may run when the model gives none."
    )
    max_timeout: float = Field(600.0, gt=0, description="Upper bound on a timeout the model asks for.")
    python_session: str | None = Field(
        None,
        description="The persistent interpreter execute_python runs in (a conversation's, or a /chat "
        "run's); None: a new python3 process per call.",
    )
    output_limit: int = Field(
        SandboxLimits.model_fields["output_limit_bytes"].default,  # the sandbox's capture cap
        ge=256,
        description="Per-stream head+tail cap; its head part is streamed as tool_output.",
    )

    def timeout_for(self, asked: float | None) -> float:
        """The seconds a call may run: what it asked for (else the default), at most the maximum."""
        return min(asked or self.default_timeout, self.max_timeout)


def _sendable(what: str) -> AfterValidator:
    """Refuses (with a message for the model) a program text the sandbox could not be handed.

    Every value the model controls is checked where the arguments are parsed, against what the
    sandbox accepts, so that such a command is a tool error the model sees, not the end of the run.
    """

    def check(value: str) -> str:
        validate_source(value, what)
        return value

    return AfterValidator(check)


# Extra arguments are ignored: models add some (the MCP surface forbids them in its subclasses).


class BashArgs(BaseModel):
    """The arguments of a bash call."""

    model_config = ConfigDict(extra="ignore")
    command: Annotated[str, _sendable("the command")] = Field(
        min_length=1, max_length=MAX_SOURCE_BYTES, description="The bash command to run."
    )
    timeout: float | None = Field(None, gt=0, description="Seconds before the command is killed.")


class PythonArgs(BaseModel):
    """The arguments of a Python call."""

    model_config = ConfigDict(extra="ignore")
    code: Annotated[str, _sendable("the code")] = Field(
        min_length=1, max_length=MAX_SOURCE_BYTES, description="The Python 3 source to run."
    )
    timeout: float | None = Field(None, gt=0, description="Seconds before the program is killed.")


ToolArgs = BashArgs | PythonArgs


def _schema(name: str, description: str, field: str, field_description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    field: {"type": "string", "description": field_description},
                    "timeout": {"type": "number", "description": "Seconds before the call is killed."},
                },
                "required": [field],
            },
        },
    }


TOOL_SCHEMAS: list[dict[str, Any]] = [
    _schema(
        "execute_bash",
        "Run a bash command in the sandbox (working directory /workspace, no network). "
        "Returns exit code, stdout and stderr.",
        "command",
        "The bash command to run.",
    ),
    _schema(
        "execute_python",
        "Run Python 3 code in the sandbox (working directory /workspace). Print what you need to see. "
        "Unless the workspace is set to a fresh process per call, the calls of a conversation share "
        "one interpreter, like a notebook: variables, imports and open files are kept between them.",
        "code",
        "The Python source to run.",
    ),
]


class ToolOutcome(BaseModel):
    """The result of one tool call, whether it ran or not."""

    success: bool
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    state_lost: bool = False
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    truncated_bytes: int = 0
    duration: float = 0.0
    timeout: float | None = None
    error: str | None = None

    @classmethod
    def rejected(cls, error: str) -> ToolOutcome:
        return cls(success=False, error=error)

    @classmethod
    def from_exec(cls, result: ExecResult, timeout: float) -> ToolOutcome:
        return cls(
            success=result.success,
            stdout=result.stdout.text,
            stderr=result.stderr.text,
            returncode=result.exit_code,
            timed_out=result.timed_out,
            oom_killed=result.oom_killed,
            state_lost=result.state_lost,
            stdout_bytes=result.stdout.total_bytes,
            stderr_bytes=result.stderr.total_bytes,
            truncated_bytes=result.stdout.truncated_bytes + result.stderr.truncated_bytes,
            duration=result.duration,
            timeout=timeout,
        )


_TOOLS: dict[str, type[BashArgs] | type[PythonArgs]] = {
    "execute_bash": BashArgs,
    "execute_python": PythonArgs,
}


class SandboxSource(Protocol):
    """Where a tool call gets its sandbox, awaited only once the call is valid (e.g. a LazySandbox)."""

    async def __call__(self) -> Sandbox: ...


async def execute_tool_call(
    name: str,
    raw_arguments: str,
    get_sandbox: SandboxSource,
    config: ToolConfig,
    on_output: OnOutput | None = None,
) -> ToolOutcome:
    """Validate the model's call and run it; argument problems come back as a rejected outcome.

    The sandbox is asked for only once the call is valid, so a run whose model never calls a tool
    correctly never pays for a container.
    """
    args_model = _TOOLS.get(name) if name in config.allowed else None
    if args_model is None:
        available = ", ".join(config.allowed) or "none"
        return ToolOutcome.rejected(f"Unknown tool {name!r}. Available tools: {available}.")
    try:
        parsed = json.loads(raw_arguments) if raw_arguments.strip() else {}
    except json.JSONDecodeError as e:
        return ToolOutcome.rejected(f"Arguments for {name} are not valid JSON ({e}). Send a JSON object.")
    if not isinstance(parsed, dict):
        return ToolOutcome.rejected(
            f"Arguments for {name} must be a JSON object, got {type(parsed).__name__}."
        )
    try:
        args = args_model.model_validate(parsed)
    except ValidationError as e:
        # No full stop added: a refusal's own message may end with one (and go on to say what to do).
        return ToolOutcome.rejected(
            f"Invalid arguments for {name}: {describe_validation_error(e, whole='arguments')}"
        )
    return await run_tool(args, get_sandbox, config, on_output)


async def run_tool(
    args: ToolArgs,
    get_sandbox: SandboxSource,
    config: ToolConfig,
    on_output: OnOutput | None = None,
) -> ToolOutcome:
    """Run a validated call in the sandbox ``get_sandbox`` opens; a command's failure is a result.

    A failure of the sandbox (it could not start, or could not run or kill the command) is a
    :class:`SandboxFailedError`: the caller's surfaces know runtime errors, not the backend's.
    """
    timeout = config.timeout_for(args.timeout)
    try:
        sandbox = await get_sandbox()
        if isinstance(args, BashArgs):
            result = await sandbox.run_bash(args.command, timeout, on_output)
        else:
            result = await sandbox.run_python(args.code, timeout, on_output, config.python_session)
    except SandboxError as e:
        log.warning("sandbox_failed", error=str(e), error_type=type(e).__name__)
        raise SandboxFailedError(f"the sandbox failed: {e}") from e
    return ToolOutcome.from_exec(result, timeout)


def tool_schemas(allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    """The JSON schemas of the allowed tools, in their canonical order."""
    return [schema for schema in TOOL_SCHEMAS if schema["function"]["name"] in allowed]


def render_for_model(outcome: ToolOutcome) -> str:
    """The tool message content the model sees next."""
    if outcome.error is not None:
        return f"Error: {outcome.error}"
    lines = [f"exit code: {outcome.returncode if outcome.returncode is not None else 'none (killed)'}"]
    if outcome.timed_out and outcome.returncode is not None:  # a persistent interpreter was interrupted
        lines.append(
            f"note: timed out after {outcome.timeout:g} s; interrupted with KeyboardInterrupt, "
            "the Python state was kept"
        )
    elif outcome.timed_out:
        lines.append(f"note: timed out after {outcome.timeout:g} s; the process group was killed")
    if outcome.state_lost:
        lines.append(
            "note: the Python interpreter died or stopped responding and was restarted; "
            "variables, imports and open files from earlier calls are lost"
        )
    if outcome.oom_killed:
        lines.append("note: killed for exceeding the sandbox memory limit")
    if outcome.truncated_bytes:
        lines.append(f"note: {outcome.truncated_bytes} bytes of output were cut from the middle")
    lines.append(f"stdout:\n{outcome.stdout}" if outcome.stdout else "stdout: (empty)")
    lines.append(f"stderr:\n{outcome.stderr}" if outcome.stderr else "stderr: (empty)")
    return "\n".join(lines)


def history_arguments(raw_arguments: str) -> str:
    """Arguments as replayed to the model in the assistant message.

    Some servers (vLLM with several chat templates) parse replayed arguments and answer 400 on
    invalid JSON, which would end the run over the model's own mistake; the tool result already
    tells the model what was wrong, so the replay carries an empty object instead.
    """
    try:
        return raw_arguments if isinstance(json.loads(raw_arguments), dict) else "{}"
    except json.JSONDecodeError:
        return "{}"

"""Errors raised by agent-worker's own code.

Problems the *model* causes (bad tool arguments, unknown tools, a failing command) are not
exceptions: they go back to the model as tool results and the run goes on. Everything here is a
failure of ours or of the caller, and is mapped to HTTP in one place (``api.web.errors``)::

    AgentWorkerError
    ├── InputError            400  the caller's request is invalid
    ├── ForbiddenError        403  the caller may not do this to that object
    ├── NotFoundError         404  no such object (or it belongs to another user)
    ├── ConflictError         409  the request clashes with the current state
    │   └── InsufficientFunds      a node's available credits would go below zero
    ├── PayloadTooLargeError  413  a body or upload over its limit
    ├── UnprocessableError    422  well-formed, but cannot be done as sent (an idempotency key reused)
    ├── UnavailableError      503  the worker cannot take work now (starting, draining)
    └── RunError                   ends a run; recorded as the run's ``error``
        ├── ModelError             the model server failed or stayed unreachable
        ├── SandboxFailedError     the sandbox could not start, or could not run or kill a command
        └── IterationLimitError    max_iterations passed without a final answer
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = [
    "AgentWorkerError",
    "ConflictError",
    "ForbiddenError",
    "InputError",
    "InsufficientFunds",
    "IterationLimitError",
    "ModelError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RunError",
    "SandboxFailedError",
    "UnavailableError",
    "UnprocessableError",
    "describe_validation_error",
]


class AgentWorkerError(Exception):
    """Base of every error agent-worker raises on purpose."""


class InputError(AgentWorkerError):
    """The caller sent something we cannot accept."""


class ForbiddenError(AgentWorkerError):
    """The caller is known but may not do this (e.g. edit another node, accept its own task)."""


class NotFoundError(AgentWorkerError):
    """The object does not exist for this caller."""


class ConflictError(AgentWorkerError):
    """The request conflicts with the current state (e.g. a task already running)."""


class InsufficientFunds(ConflictError):
    """A ledger entry would take a node's available balance below zero."""


class PayloadTooLargeError(AgentWorkerError):
    """A request body or file is over its configured limit."""


class UnprocessableError(AgentWorkerError):
    """The request is well-formed but cannot be carried out as sent."""


class UnavailableError(AgentWorkerError):
    """The worker cannot take this work right now."""


class RunError(AgentWorkerError):
    """Ends an agent run; its message becomes the run's ``error``."""


class ModelError(RunError):
    """The model server failed, rejected the request, or stayed unreachable after retries."""


class SandboxFailedError(RunError):
    """The sandbox failed (not the command in it): it could not start, or its executor is gone."""


class IterationLimitError(RunError):
    """The run used all its iterations and the model still wanted to call tools."""


def describe_validation_error(e: ValidationError, whole: str = "body") -> str:
    """Each problem as ``field.path: message``, joined by "; "; ``whole`` names the value itself.

    The one wording of a refused value, whoever reads it: an API caller or the model.
    """
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or whole}: {err['msg']}" for err in e.errors())

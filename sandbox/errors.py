"""Errors the sandbox backend raises: failures of ours or of the engine, never of a command.

A command that fails, times out or runs out of memory is an :class:`~sandbox.base.ExecResult`;
a command the backend refuses to send (too long, a NUL byte) is a ``ValueError`` from
:func:`~sandbox.base.validate_source`, which callers run first on what a model sent, so the model
hears why. Everything else is one of these::

    SandboxError           (itself) a sandbox container could not be removed
    ├── SandboxImageError  the sandbox image is missing and could not be built
    ├── SandboxStartError  a container could not be created or started (none is left behind)
    └── SandboxExecError   a started sandbox could not run or kill a command: its executor (or
                           its container) died, failed to spawn, or stopped answering
"""

from __future__ import annotations

__all__ = ["SandboxError", "SandboxExecError", "SandboxImageError", "SandboxStartError"]


class SandboxError(Exception):
    """Base of every error the sandbox backend raises on purpose."""


class SandboxImageError(SandboxError):
    """The sandbox image is missing and building it failed."""


class SandboxStartError(SandboxError):
    """Creating or starting a sandbox container failed; the half-made container was removed."""


class SandboxExecError(SandboxError):
    """The sandbox could not run (or kill) a command; the command's own failures are results."""

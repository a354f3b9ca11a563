"""What the health check asks of the sandbox backend, so that no surface needs to know which it is.

Only the composition root (``api.app.create_app``) knows the backend; it hands it over as a
:class:`SandboxHealth`, and ``/health`` reports whatever problem it names.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SandboxHealth"]


class SandboxHealth(Protocol):
    """A sandbox backend that can say whether sandboxes could start now."""

    async def problem(self) -> str | None:
        """Why no sandbox could start now (its engine unreachable, its image missing); None if one could.

        A broken backend is an answer here, never an exception: the health check must not fail.
        """
        ...

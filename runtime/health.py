"""Health and readiness: what the probes ask, so that no surface needs to know the backends.

Only the composition root (``api.app.create_app``) knows the sandbox backend; it hands it over as a
:class:`SandboxHealth`, and ``/health`` (liveness) reports whatever problem it names.
:func:`readiness` (``/ready``) asks more: the store answers a query, sandboxes could start, and
every configured model server answers its models list, each within a timeout and all at once, so
a probe never waits longer than that timeout (plus a little).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from pydantic import BaseModel, Field

from runtime.engine.model_registry import ModelRegistry
from runtime.store import Store

__all__ = ["Check", "SandboxHealth", "readiness"]


class Check(BaseModel):
    """One readiness check and what it found."""

    name: str = Field(description="store, sandbox, or model:<key> (one per configured model).")
    ok: bool
    reason: str | None = Field(None, description="Why it failed; null when ok.")


class SandboxHealth(Protocol):
    """A sandbox backend that can say whether sandboxes could start now."""

    async def problem(self) -> str | None:
        """Why no sandbox could start now (its engine unreachable, its image missing); None if one could.

        A broken backend is an answer here, never an exception: the health check must not fail.
        """
        ...


async def readiness(
    store: Store | None, sandboxes: SandboxHealth | None, models: ModelRegistry | None, timeout: float
) -> list[Check]:
    """Every check, in a fixed order; a part not open yet (start-up) fails its check."""

    async def store_problem() -> str | None:
        if store is None:
            return "not open"
        await store.ping()
        return None

    async def sandbox_problem() -> str | None:
        return "not started" if sandboxes is None else await sandboxes.problem()

    async def model_problems() -> dict[str, str | None]:
        return {} if models is None else await models.problems(timeout)

    store_found, sandbox_found, models_found = await asyncio.gather(
        _bounded(store_problem(), timeout), _bounded(sandbox_problem(), timeout), model_problems()
    )
    checks = [_check("store", store_found), _check("sandbox", sandbox_found)]
    checks += [_check(f"model:{key}", problem) for key, problem in models_found.items()]
    return checks


async def _bounded(probe: Awaitable[str | None], timeout: float) -> str | None:
    """The probe's answer; a failure or no answer within ``timeout`` is one too."""
    try:
        async with asyncio.timeout(timeout):
            return await probe
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as e:
        return f"failed: {type(e).__name__}"


def _check(name: str, problem: str | None) -> Check:
    return Check(name=name, ok=problem is None, reason=problem)

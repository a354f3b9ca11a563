"""Background tasks that each watch one run to its end and settle what hangs on it.

House-agent tasks and capability orders both start a run, watch it, and settle when it ends; a
watch still going at shutdown is dropped, and the next start-up's reconcile settles its run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

__all__ = ["RunWatchers"]


class RunWatchers:
    """The watches in flight; :meth:`aclose` cancels them and waits until they are gone."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, watch: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(watch, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""A :class:`~sandbox.base.SandboxFactory` whose sandboxes are counted, timed and traced as they start.

The composition root wraps the backend for each kind of user: ``ephemeral`` for ``/chat`` runs (a
warm spare's claim, or a cold start when none is ready), ``workspace`` for the long-lived sandboxes
of workspaces and MCP sessions. ``sandbox/`` knows nothing of metrics; the warm pools count their
own claims and spares, read at scrape time (:meth:`~runtime.telemetry.Telemetry.watch_pools`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.trace import Status, StatusCode

from runtime.telemetry import tracing as attr
from runtime.telemetry.core import Telemetry
from runtime.telemetry.metrics import SandboxKind
from sandbox.base import Sandbox, SandboxFactory, SandboxRequest

__all__ = ["ObservedSandboxes"]


class ObservedSandboxes:
    """``factory`` with each sandbox it gives (until it can run commands) counted and timed as ``kind``."""

    def __init__(self, factory: SandboxFactory, telemetry: Telemetry, kind: SandboxKind) -> None:
        self._factory = factory
        self._telemetry = telemetry
        self._kind = kind

    @asynccontextmanager
    async def open(self, request: SandboxRequest) -> AsyncIterator[Sandbox]:
        kind = self._kind
        metrics = self._telemetry.metrics
        # Not the current span: it covers the start only, not the sandbox's life that follows.
        span = self._telemetry.tracer.start_span(
            f"start_sandbox {kind}", attributes={"agent_worker.sandbox.kind": kind}
        )
        started = time.monotonic()
        opened = False
        try:
            async with self._factory.open(request) as sandbox:
                opened = True
                span.end()
                metrics.sandbox_starts.labels(kind).inc()
                metrics.sandbox_start_duration.labels(kind).observe(time.monotonic() - started)
                yield sandbox
        except BaseException as e:
            if not opened:  # the start failed (or was canceled): the span says so
                span.set_attribute(attr.ERROR_TYPE, type(e).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(e)))
                span.end()
            raise

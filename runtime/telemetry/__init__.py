"""Metrics and traces: the engine's one seam for both.

:class:`Telemetry` holds a Prometheus registry of the worker's own and an OpenTelemetry tracer (the
API's no-op one unless spans are exported). The engine reports through it: a run and its tool
calls (:meth:`Telemetry.run`), the event store's writes (:meth:`Telemetry.stored`); the model
registry and the sandbox factory are wrapped (:class:`ObservedModel`, :class:`ObservedSandboxes`),
and the pool and task manager are read at scrape time. ``api/app.py`` builds it and wires it in;
the HTTP surface adds its request metrics to the same registry. docs/observability.md lists every
metric.
"""

from runtime.telemetry.core import RunObserver, Telemetry, ToolCallObserver, no_telemetry, tool_outcome
from runtime.telemetry.metrics import ENGINE_METRICS, RunKind
from runtime.telemetry.models import ObservedModel
from runtime.telemetry.sandboxes import ObservedSandboxes

__all__ = [
    "ENGINE_METRICS",
    "ObservedModel",
    "ObservedSandboxes",
    "RunKind",
    "RunObserver",
    "Telemetry",
    "ToolCallObserver",
    "no_telemetry",
    "tool_outcome",
]

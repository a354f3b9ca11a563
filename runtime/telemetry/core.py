"""The :class:`Telemetry` of one worker, and what a run reports through it.

Spans nest by OpenTelemetry's context (a contextvar): a run's span is current while the loop runs,
so the model calls and tool calls made inside it, and a sandbox start the loop's prefetch task
makes (a task copies the context), become its children with no ids passed around. Without a
tracer provider (traces off, the default) no span is made at all; with one, a span costs tens of
microseconds and a metric update about one, against milliseconds for what they measure
(bench/telemetry_overhead.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib.metadata import version
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from prometheus_client import CollectorRegistry

from runtime.engine.tools import ALL_TOOLS, ToolOutcome
from runtime.telemetry import tracing as attr
from runtime.telemetry.metrics import (
    EngineMetrics,
    LiveCollector,
    RunKind,
    RunOutcomeLabel,
    ToolOutcomeLabel,
)

__all__ = [
    "PoolState",
    "RunObserver",
    "TaskLoad",
    "Telemetry",
    "ToolCallObserver",
    "no_telemetry",
    "tool_outcome",
]

_NAME_LIMIT = 100  # a tool name is the model's text: kept short in spans


class PoolState(Protocol):
    """What a warm pool says about itself (:class:`sandbox.pool.WarmPool`)."""

    @property
    def ready(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def claims(self) -> int: ...
    @property
    def cold_starts(self) -> int: ...
    @property
    def spares_started(self) -> int: ...
    @property
    def spare_start_seconds(self) -> float: ...


class TaskLoad(Protocol):
    """What the task manager says about its load (:class:`runtime.tasks.manager.TaskManager`)."""

    @property
    def running_count(self) -> int: ...
    @property
    def pending_count(self) -> int: ...


class Telemetry:
    """Metrics (a Prometheus registry of this worker's own) and traces (a tracer, a no-op by default).

    ``tracer_provider``: where spans go (the OTLP exporter, or a test's in-memory one); None: none
    are recorded. :meth:`close` shuts down a provider made by :meth:`exporting`, flushing its spans.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.registry = CollectorRegistry()
        self.metrics = EngineMetrics(self.registry)
        self._live = LiveCollector()
        self.registry.register(self._live)
        self.tracer: Tracer = (
            tracer_provider.get_tracer(attr.INSTRUMENTATION, version("agent-worker"))
            if tracer_provider is not None
            else trace.NoOpTracer()
        )
        self.tracing = tracer_provider is not None
        self._owned: SDKTracerProvider | None = None

    @classmethod
    def exporting(cls, traces_endpoint: str | None) -> Telemetry:
        """The worker's telemetry: spans exported over OTLP/HTTP to ``traces_endpoint`` when set."""
        if traces_endpoint is None:
            return cls()
        provider = attr.otlp_tracer_provider(traces_endpoint)
        telemetry = cls(provider)
        telemetry._owned = provider
        return telemetry

    def close(self) -> None:
        if self._owned is not None:
            self._owned.shutdown()  # exports what is buffered; bounded by the exporter's timeout
            self._owned = None

    def span(
        self,
        name: str,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
    ) -> AbstractContextManager[Span]:
        """A span made current for the block; with traces off, nothing at all (not even the no-op
        tracer's context switch, a few microseconds on every tool call)."""
        if not self.tracing:
            return nullcontext(trace.INVALID_SPAN)
        return self.tracer.start_as_current_span(
            name,
            context=context,
            kind=kind,
            attributes=attributes,
            record_exception=False,  # each caller says what failed, and a cancellation is no error
            set_status_on_exception=False,
        )

    # --- what is read at scrape time ----------------------------------------------------------

    def watch_pools(self, pools: Callable[[], Iterable[PoolState]]) -> None:
        """The warm pools (one per engine) whose counts the metrics show, summed."""
        fields = {
            "agent_sandbox_pool_ready": "ready",
            "agent_sandbox_pool_target": "size",
            "agent_sandbox_pool_claims_total": "claims",
            "agent_sandbox_pool_cold_starts_total": "cold_starts",
            "agent_sandbox_pool_spares_started_total": "spares_started",
            "agent_sandbox_pool_spare_start_seconds_total": "spare_start_seconds",
        }
        for metric, field in fields.items():
            self._live.sources[metric] = functools.partial(_total, pools, field)

    def watch_tasks(self, tasks: TaskLoad) -> None:
        self._live.sources["agent_tasks_running"] = lambda: tasks.running_count
        self._live.sources["agent_tasks_pending"] = lambda: tasks.pending_count

    # --- what the engine reports --------------------------------------------------------------

    def stored(self, events: int, seconds: float) -> None:
        """A batch of ``events`` of a run was written to the store in ``seconds``."""
        self.metrics.store_write_duration.observe(seconds)
        self.metrics.store_events.inc(events)

    @contextmanager
    def run(
        self, kind: RunKind, run_id: str, model: str, conversation_id: str | None = None
    ) -> Iterator[RunObserver]:
        """One run of the agent loop: its span (the parent of its calls' spans) and its counts.

        The loop reports how it ended with :meth:`RunObserver.ended`; a run left by an exception
        counts as failed, and by cancellation as canceled.
        """
        attributes = {
            attr.OPERATION: "invoke_agent",
            attr.AGENT_NAME: attr.INSTRUMENTATION,
            attr.REQUEST_MODEL: model,
            attr.RUN_ID: run_id,
            attr.RUN_KIND: kind,
        }
        if conversation_id is not None:
            attributes[attr.CONVERSATION_ID] = conversation_id
        self.metrics.runs_started.labels(kind).inc()
        started = time.monotonic()
        with self.span(f"invoke_agent {kind}", attributes) as span:
            observer = RunObserver(self, kind, span)
            try:
                yield observer
            except asyncio.CancelledError:
                observer.outcome = "canceled"
                raise
            except BaseException as e:
                observer.outcome = "failed"
                _failed(span, type(e).__qualname__)
                raise
            finally:
                span.set_attribute(attr.ITERATIONS, observer.iterations)
                self.metrics.runs_finished.labels(kind, observer.outcome).inc()
                self.metrics.run_duration.labels(kind).observe(time.monotonic() - started)
                self.metrics.run_iterations.labels(kind).observe(observer.iterations)


class RunObserver:
    """What the loop reports about the run it is in (made by :meth:`Telemetry.run`)."""

    def __init__(self, telemetry: Telemetry, kind: RunKind, span: Span) -> None:
        self._telemetry = telemetry
        self._iterations = telemetry.metrics.iterations.labels(kind)
        self._span = span
        self.iterations = 0
        self.outcome: RunOutcomeLabel = "failed"  # until the loop says how the run ended

    @classmethod
    def unobserved(cls) -> RunObserver:
        """For a loop run outside :meth:`Telemetry.run` (tests): reports go nowhere anyone reads."""
        return cls(no_telemetry(), "chat", trace.INVALID_SPAN)

    def iteration(self, number: int) -> None:
        self.iterations = number
        self._iterations.inc()

    def ended(self, iterations: int, error: str | None) -> None:
        self.iterations = iterations
        self.outcome = "failed" if error else "completed"
        if error:
            _failed(self._span, "run_failed", error)

    @contextmanager
    def tool_call(self, name: str, call_id: str) -> Iterator[ToolCallObserver]:
        """One tool call: its span and its count by tool and outcome (see :func:`tool_outcome`)."""
        tool = name if name in ALL_TOOLS else "unknown"  # the model names tools: keep the label bounded
        metrics = self._telemetry.metrics
        observer = ToolCallObserver()
        started = time.monotonic()
        attributes = {
            attr.OPERATION: "execute_tool",
            attr.TOOL_NAME: name[:_NAME_LIMIT],
            attr.TOOL_CALL_ID: call_id[:_NAME_LIMIT],
            attr.TOOL_TYPE: "function",
        }
        with self._telemetry.span(f"execute_tool {tool}", attributes) as span:
            try:
                yield observer
            except asyncio.CancelledError:
                observer.outcome = "canceled"
                raise
            except BaseException as e:  # the sandbox failed: the run ends
                observer.outcome = "sandbox_failed"
                _failed(span, type(e).__qualname__)
                raise
            finally:
                span.set_attribute(attr.TOOL_OUTCOME, observer.outcome)
                if observer.exit_code is not None:
                    span.set_attribute(attr.EXIT_CODE, observer.exit_code)
                if observer.outcome not in ("ok", "nonzero_exit", "sandbox_failed", "canceled"):
                    _failed(span, observer.outcome)
                metrics.tool_calls.labels(tool, observer.outcome).inc()
                metrics.tool_duration.labels(tool).observe(time.monotonic() - started)


class ToolCallObserver:
    """Takes the result of one tool call (made by :meth:`RunObserver.tool_call`)."""

    __slots__ = ("exit_code", "outcome")

    def __init__(self) -> None:
        self.outcome: ToolOutcomeLabel = "sandbox_failed"  # until a result comes
        self.exit_code: int | None = None

    def result(self, outcome: ToolOutcome) -> None:
        self.outcome = tool_outcome(outcome)
        self.exit_code = outcome.returncode


def tool_outcome(outcome: ToolOutcome) -> ToolOutcomeLabel:
    """The outcome label of a call that returned: refused, killed, or ran to an exit code."""
    if outcome.error is not None:
        return "rejected"  # the model's arguments (or tool name) were refused
    if outcome.timed_out:
        return "timed_out"
    if outcome.oom_killed:
        return "oom_killed"
    return "ok" if outcome.returncode == 0 else "nonzero_exit"


def _total(pools: Callable[[], Iterable[PoolState]], field: str) -> float:
    return sum(getattr(pool, field) for pool in pools())


def _failed(span: Span, error_type: str, description: str | None = None) -> None:
    span.set_attribute(attr.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, description))


@functools.cache
def no_telemetry() -> Telemetry:
    """For components built without one (tests, tools): counts that nobody reads, no spans."""
    return Telemetry()
